/**
 * A file and a directory never share a name (issue 11, item 11), as on a real filesystem:
 * writing below a file fails like ENOTDIR (errors.parentIsFile), writing a file where a directory
 * is fails like EISDIR (errors.isDirectory); uploads answer "invalid_path" / "is_directory" per
 * file, the other files of the batch are written. Within one upload batch the later of two
 * clashing paths (in input order) is the one refused. Run against any backend: call
 * fileDirectoryCases(name, fresh, close?) from a backend's test file (`close` runs after its cases).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { errors } from "../../src/protocol.js";
import type { DeepAgentsBackend } from "../../src/core/interface.js";

const names = (r: { files?: { path: string }[] }) => (r.files ?? []).map((f) => f.path);

export function fileDirectoryCases(
  name: string,
  fresh: () => Promise<DeepAgentsBackend>,
  close?: () => Promise<void>,
): void {
  const t = suite(`file vs directory: ${name}`);
  if (close) t.after(close);

  t("write below a file is refused, naming the file; nothing is written", async () => {
    const b = await fresh();
    assert.is((await b.write("/a", "file a")).error, undefined);
    assert.equal(await b.write("/a/b.txt", "x"), { error: errors.parentIsFile("/a/b.txt", "/a") });
    assert.equal(await b.write("/a/deep/c.txt", "x"), { error: errors.parentIsFile("/a/deep/c.txt", "/a") });
    assert.is((await b.write("/n/a", "file /n/a")).error, undefined);
    assert.equal(await b.write("/n/a/b", "x"), { error: errors.parentIsFile("/n/a/b", "/n/a") });
    assert.equal(names(await b.ls("/")), ["/a", "/n/"]);
    assert.equal(names(await b.ls("/n")), ["/n/a"]);
    assert.is((await b.readRaw("/a")).data!.content, "file a");
  });

  t("write of a file where a directory is is refused; the directory is untouched", async () => {
    const b = await fresh();
    assert.is((await b.write("/dir/x.txt", "x")).error, undefined);
    assert.equal(await b.write("/dir", "x"), { error: errors.isDirectory("/dir") });
    assert.equal(names(await b.ls("/")), ["/dir/"]);
    assert.is((await b.readRaw("/dir/x.txt")).data!.content, "x");
  });

  t("upload: below a file is invalid_path, over a directory is is_directory; the rest is written", async () => {
    const b = await fresh();
    assert.is((await b.write("/f", "file f")).error, undefined);
    assert.is((await b.write("/d/inner.txt", "inner")).error, undefined);
    const up = await b.uploadFiles([
      ["/f/x.txt", Buffer.from("x")],
      ["/d", Buffer.from("d")],
      ["/ok.txt", Buffer.from("ok")],
    ]);
    assert.equal(up, [
      { path: "/f/x.txt", error: "invalid_path" },
      { path: "/d", error: "is_directory" },
      { path: "/ok.txt", error: null },
    ]);
    assert.equal(names(await b.ls("/")), ["/d/", "/f", "/ok.txt"]);
    assert.is((await b.readRaw("/f")).data!.content, "file f");
  });

  t("upload: two paths of one batch that clash: the later one in input order is refused", async () => {
    const b = await fresh();
    const up = await b.uploadFiles([
      ["/p", Buffer.from("p")],
      ["/p/q.txt", Buffer.from("q")],
      ["/r/s.txt", Buffer.from("s")],
      ["/r", Buffer.from("r")],
    ]);
    assert.equal(up, [
      { path: "/p", error: null },
      { path: "/p/q.txt", error: "invalid_path" },
      { path: "/r/s.txt", error: null },
      { path: "/r", error: "is_directory" },
    ]);
    assert.equal(names(await b.ls("/")), ["/p", "/r/"]);
    assert.equal(names(await b.ls("/r")), ["/r/s.txt"]);
  });

  t("after the file is deleted, the name can become a directory (and back)", async () => {
    const b = await fresh();
    assert.is((await b.write("/a", "file")).error, undefined);
    assert.is((await b.delete("/a")).error, undefined);
    assert.is((await b.write("/a/b.txt", "x")).error, undefined);
    assert.is((await b.delete("/a")).error, undefined);
    assert.is((await b.write("/a", "file again")).error, undefined);
    assert.equal(names(await b.ls("/")), ["/a"]);
  });

  t.run();
}
