/**
 * Real directories (issue 15, item 2), the same on every backend: mkdir makes a directory that
 * exists while empty, ls lists it (glob lists files only, as deepagents' FilesystemBackend), stat
 * says it is one, delete removes it and everything below; mkdir -p's parents stay when the child
 * goes; a directory only implied by files still goes with its last file. A file and a directory
 * never share a name, whichever came first; move and copy carry empty directories. Run against
 * any backend: directoryCases(name, fresh, close?) from a backend's test file.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { DeepAgentsBackend } from "../../src/core/interface.js";
import { errors } from "../../src/protocol.js";

const names = (r: { files?: { path: string }[]; error?: string }) => {
  assert.is(r.error, undefined);
  return (r.files ?? []).map((f) => f.path);
};

export function directoryCases(
  name: string,
  fresh: () => Promise<DeepAgentsBackend>,
  close?: () => Promise<void>,
): void {
  const t = suite(`directories: ${name}`);
  if (close) t.after(close);

  t("mkdir: an empty directory that ls lists and stat knows; glob lists files only", async () => {
    const b = await fresh();
    assert.equal(await b.mkdir("/empty"), { path: "/empty", created: true });
    assert.equal(await b.ls("/"), { files: [{ path: "/empty/", is_dir: true, size: 0, modified_at: "" }] });
    assert.equal(names(await b.ls("/empty")), []);
    assert.equal(await b.stat("/empty"), { error: errors.isDirectory("/empty"), isDirectory: true });
    assert.equal(await b.stat("/nothing"), { error: errors.readNotFound("/nothing") });
    assert.equal(names(await b.glob("**/*")), []);
    assert.equal(await b.downloadFiles(["/empty"]), [{ path: "/empty", content: null, error: "is_directory" }]);
    assert.is((await b.read("/empty")).error, errors.readNotFound("/empty"));
  });

  t("mkdir without parents: the parent must exist, the directory must not; with parents both are fine", async () => {
    const b = await fresh();
    assert.equal(await b.mkdir("/a/b"), { error: errors.parentMissing("/a/b", "/a") });
    assert.equal(names(await b.ls("/")), [], "nothing made");
    assert.equal(await b.mkdir("/a"), { path: "/a", created: true });
    assert.equal(await b.mkdir("/a"), { error: errors.directoryExists("/a") });
    assert.equal(await b.mkdir("/a", { parents: true }), { path: "/a", created: false });
    assert.equal(await b.mkdir("/a/b"), { path: "/a/b", created: true });
    assert.equal(await b.mkdir("/x/y/z", { parents: true }), { path: "/x/y/z", created: true });
    assert.equal(names(await b.ls("/x/y")), ["/x/y/z/"]);
    // a directory that holds files exists: its parent is there for mkdir, and mkdir of it is EEXIST
    await b.write("/f/g/h.txt", "h");
    assert.equal(await b.mkdir("/f/g/i"), { path: "/f/g/i", created: true });
    assert.equal(await b.mkdir("/f"), { error: errors.directoryExists("/f") });
    assert.equal(await b.mkdir("/"), { error: errors.directoryExists("/") });
    assert.equal(await b.mkdir("/", { parents: true }), { path: "/", created: false });
    assert.equal(await b.mkdir("/p", { parents: "yes" as unknown as boolean }), {
      error: errors.invalidParents("yes"),
    });
    assert.match((await b.mkdir("/../x")).error ?? "", /^Error: Invalid path/);
    assert.equal(names(await b.ls("/")), ["/a/", "/f/", "/x/"]);
  });

  t("mkdir -p's parents stay when the child goes; a directory implied by files goes with its last file", async () => {
    const b = await fresh();
    await b.mkdir("/p/q/r", { parents: true });
    assert.equal(await b.delete("/p/q/r"), { path: "/p/q/r", filesUpdate: null });
    assert.equal(names(await b.ls("/p")), ["/p/q/"]);
    assert.equal(names(await b.ls("/p/q")), []);
    // a file written into a made directory, then deleted: the directory stays
    await b.write("/p/q/file.txt", "x");
    await b.delete("/p/q/file.txt");
    assert.equal(names(await b.ls("/p")), ["/p/q/"]);
    // implied only by a file: gone with it, unless mkdir -p made it stay
    await b.write("/implied/f.txt", "x");
    await b.delete("/implied/f.txt");
    assert.equal(names(await b.ls("/")), ["/p/"]);
    await b.write("/kept/f.txt", "x");
    assert.equal(await b.mkdir("/kept", { parents: true }), { path: "/kept", created: false });
    await b.delete("/kept/f.txt");
    assert.equal(names(await b.ls("/")), ["/kept/", "/p/"]);
  });

  t("delete of a directory: the empty ones below it go too; a second delete is not found", async () => {
    const b = await fresh();
    await b.mkdir("/d/e/f", { parents: true });
    await b.mkdir("/d/g", { parents: true });
    await b.write("/d/e/x.txt", "x");
    await b.mkdir("/other");
    assert.equal(await b.delete("/d"), { path: "/d", filesUpdate: null });
    assert.equal(names(await b.ls("/")), ["/other/"]);
    assert.equal(await b.delete("/d"), { error: errors.notFound("/d") });
    assert.equal(await b.delete("/other"), { path: "/other", filesUpdate: null });
    assert.equal(names(await b.ls("/")), []);
  });

  t("a file and a made directory never share a name, whichever came first", async () => {
    const b = await fresh();
    await b.mkdir("/dir");
    assert.equal(await b.write("/dir", "x"), { error: errors.isDirectory("/dir") });
    assert.equal(await b.write("/dir", "x", { ifVersion: 0 }), { error: errors.isDirectory("/dir") });
    assert.equal(await b.uploadFiles([["/dir", Buffer.from("x")]]), [{ path: "/dir", error: "is_directory" }]);
    await b.mkdir("/deep/below", { parents: true });
    assert.equal(await b.write("/deep", "x"), { error: errors.isDirectory("/deep") });
    await b.write("/file.txt", "x");
    assert.equal(await b.mkdir("/file.txt"), { error: errors.fileExists("/file.txt") });
    assert.equal(await b.mkdir("/file.txt", { parents: true }), { error: errors.fileExists("/file.txt") });
    assert.equal(await b.mkdir("/file.txt/sub", { parents: true }), {
      error: errors.parentIsFile("/file.txt/sub", "/file.txt"),
    });
    assert.equal(names(await b.ls("/")), ["/deep/", "/dir/", "/file.txt"]);
    assert.equal(names(await b.ls("/dir")), []);
  });

  t("move and copy carry empty directories; clashes with them are refused and change nothing", async () => {
    const b = await fresh();
    await b.mkdir("/src/empty/inner", { parents: true });
    await b.write("/src/a.txt", "a");
    assert.equal(await b.copy("/src", "/copy"), { path: "/copy", from: "/src", files: 1, filesUpdate: null });
    assert.equal(names(await b.ls("/copy")), ["/copy/a.txt", "/copy/empty/"]);
    assert.equal(names(await b.ls("/copy/empty")), ["/copy/empty/inner/"]);
    assert.equal(await b.move("/src", "/moved"), { path: "/moved", from: "/src", files: 1, filesUpdate: null });
    assert.equal(names(await b.ls("/")), ["/copy/", "/moved/"]);
    assert.equal(names(await b.ls("/moved/empty")), ["/moved/empty/inner/"]);
    // an empty directory alone
    assert.equal(await b.move("/moved/empty/inner", "/lone"), {
      path: "/lone",
      from: "/moved/empty/inner",
      files: 0,
      filesUpdate: null,
    });
    assert.equal(names(await b.ls("/moved/empty")), []);
    assert.equal(names(await b.ls("/")), ["/copy/", "/lone/", "/moved/"]);
    // a file onto a made directory, a made directory onto a file
    await b.write("/f.txt", "f");
    assert.equal(await b.move("/f.txt", "/lone"), { error: errors.isDirectory("/lone") });
    assert.equal(await b.move("/f.txt", "/lone", { overwrite: true }), { error: errors.isDirectory("/lone") });
    assert.equal(await b.move("/lone", "/f.txt"), { error: errors.parentIsFile("/f.txt", "/f.txt") });
    assert.equal(names(await b.ls("/")), ["/copy/", "/f.txt", "/lone/", "/moved/"]);
    assert.is((await b.readRaw("/f.txt")).data?.content, "f");
    assert.equal(await b.move("/nowhere", "/x"), { error: errors.notFound("/nowhere") });
  });

  t.run();
}
