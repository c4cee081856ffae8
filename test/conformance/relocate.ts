/**
 * move() and copy() (issue 15, item 1), the same on every backend: a file or a whole directory,
 * contents and types intact; a file in the way refused unless `overwrite` (a target directory's
 * other files stay); the filesystem's clashes (a file onto a directory, a directory onto a file,
 * a path below a file) refused with write()'s words; nothing changed by a refused call. Run
 * against any backend: relocateCases(name, fresh, close?) from a backend's test file.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { DeepAgentsBackend } from "../../src/core/interface.js";
import { MAX_PATH_BYTES } from "../../src/paths.js";
import { errors } from "../../src/protocol.js";

const names = (r: { files?: { path: string }[] }) => (r.files ?? []).map((f) => f.path);
const text = async (b: DeepAgentsBackend, path: string) => (await b.readRaw(path)).data?.content;
const tree = async (b: DeepAgentsBackend) => ((await b.glob("**/*", "/")).files ?? []).map((f) => f.path).sort();
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 1, 2, 255]);

async function seed(b: DeepAgentsBackend): Promise<void> {
  for (const [path, content] of [
    ["/src/a.ts", "export const a = 1;\n"],
    ["/src/lib/b.ts", "line one\nline two\n"],
    ["/src/lib/deep/c.md", "# c\n"],
    ["/notes.md", "notes\n"],
  ]) {
    assert.is((await b.write(path, content)).error, undefined, path);
  }
  assert.equal(await b.uploadFiles([["/src/img.png", PNG]]), [{ path: "/src/img.png", error: null }]);
}

export function relocateCases(
  name: string,
  fresh: () => Promise<DeepAgentsBackend>,
  close?: () => Promise<void>,
): void {
  const t = suite(`move and copy: ${name}`);
  if (close) t.after(close);

  t("move of a file: the new path has its content, the old one is gone", async () => {
    const b = await fresh();
    await seed(b);
    assert.equal(await b.move("/notes.md", "/docs/notes.md"), {
      path: "/docs/notes.md",
      from: "/notes.md",
      files: 1,
      filesUpdate: null,
    });
    assert.is(await text(b, "/docs/notes.md"), "notes\n");
    assert.is((await b.read("/notes.md")).error, errors.readNotFound("/notes.md"));
    assert.equal(names(await b.ls("/")), ["/docs/", "/src/"]);
  });

  t("move of a directory: every file below it, binary ones byte for byte; grep finds them there", async () => {
    const b = await fresh();
    await seed(b);
    const r = await b.move("/src", "/app/src");
    assert.is(r.error, undefined);
    assert.is(r.files, 4);
    assert.equal(await tree(b), [
      "/app/src/a.ts",
      "/app/src/img.png",
      "/app/src/lib/b.ts",
      "/app/src/lib/deep/c.md",
      "/notes.md",
    ]);
    assert.is(await text(b, "/app/src/lib/b.ts"), "line one\nline two\n");
    assert.ok(Buffer.from((await b.readRaw("/app/src/img.png")).data!.content as Uint8Array).equals(PNG));
    assert.equal((await b.grep("line two", "/")).matches, [{ path: "/app/src/lib/b.ts", line: 2, text: "line two" }]);
    assert.equal(names(await b.ls("/")), ["/app/", "/notes.md"]);
  });

  t("copy of a file and of a directory: both places hold it, and a write to one leaves the other", async () => {
    const b = await fresh();
    await seed(b);
    assert.equal(await b.copy("/notes.md", "/notes-copy.md"), {
      path: "/notes-copy.md",
      from: "/notes.md",
      files: 1,
      filesUpdate: null,
    });
    assert.is((await b.copy("/src", "/backup/src")).files, 4);
    assert.is((await b.edit("/backup/src/lib/b.ts", "line two", "line 2")).error, undefined);
    assert.is(await text(b, "/src/lib/b.ts"), "line one\nline two\n");
    assert.is(await text(b, "/backup/src/lib/b.ts"), "line one\nline 2\n");
    assert.is((await b.write("/notes.md", "changed\n")).error, undefined);
    assert.is(await text(b, "/notes-copy.md"), "notes\n");
    assert.equal(
      (await b.grep("line", "/")).matches?.map((m) => `${m.path}:${m.line}`),
      ["/backup/src/lib/b.ts:1", "/backup/src/lib/b.ts:2", "/src/lib/b.ts:1", "/src/lib/b.ts:2"],
    );
  });

  t("a file in the way is refused, naming it, and nothing changes; overwrite replaces it", async () => {
    const b = await fresh();
    await seed(b);
    assert.is((await b.write("/dst/lib/b.ts", "old b\n")).error, undefined);
    assert.is((await b.write("/dst/keep.txt", "kept\n")).error, undefined);
    const before = await tree(b);
    for (const op of ["move", "copy"] as const) {
      assert.equal(await b[op]("/src", "/dst"), { error: errors.targetExists("/dst/lib/b.ts") });
      assert.equal(await b[op]("/notes.md", "/dst/keep.txt"), { error: errors.targetExists("/dst/keep.txt") });
    }
    assert.equal(await tree(b), before);
    assert.is(await text(b, "/dst/lib/b.ts"), "old b\n");
    // overwrite: the clashing file is replaced, the target directory's other files stay (a merge)
    assert.is((await b.move("/src", "/dst", { overwrite: true })).files, 4);
    assert.is(await text(b, "/dst/lib/b.ts"), "line one\nline two\n");
    assert.is(await text(b, "/dst/keep.txt"), "kept\n");
    assert.equal(await tree(b), [
      "/dst/a.ts",
      "/dst/img.png",
      "/dst/keep.txt",
      "/dst/lib/b.ts",
      "/dst/lib/deep/c.md",
      "/notes.md",
    ]);
    assert.is((await b.copy("/notes.md", "/dst/keep.txt", { overwrite: true })).files, 1);
    assert.is(await text(b, "/dst/keep.txt"), "notes\n");
  });

  t("a file and a directory never share a name: clashes are refused with write()'s words", async () => {
    const b = await fresh();
    await seed(b);
    const before = await tree(b);
    for (const op of ["move", "copy"] as const) {
      // a file onto a directory, even with overwrite
      assert.equal(await b[op]("/notes.md", "/src", { overwrite: true }), { error: errors.isDirectory("/src") });
      // a directory onto a file
      assert.equal(await b[op]("/src", "/notes.md", { overwrite: true }), {
        error: errors.parentIsFile("/notes.md", "/notes.md"),
      });
      // below a file
      assert.equal(await b[op]("/src/a.ts", "/notes.md/a.ts"), {
        error: errors.parentIsFile("/notes.md/a.ts", "/notes.md"),
      });
    }
    // deeper: the target holds a file where a moved directory goes, or a directory where a moved file goes
    assert.is((await b.write("/t1/lib", "a file named lib")).error, undefined);
    assert.equal(await b.move("/src", "/t1", { overwrite: true }), { error: errors.parentIsFile("/t1", "/t1/lib") });
    assert.is((await b.write("/t2/a.ts/inner.txt", "a directory named a.ts")).error, undefined);
    assert.equal(await b.copy("/src", "/t2", { overwrite: true }), { error: errors.isDirectory("/t2/a.ts") });
    assert.equal(await tree(b), [...before, "/t1/lib", "/t2/a.ts/inner.txt"].sort());
  });

  t("a path onto itself, into itself, onto its own directory, or the root: refused before any change", async () => {
    const b = await fresh();
    await seed(b);
    const before = await tree(b);
    for (const op of ["move", "copy"] as const) {
      for (const [from, to] of [
        ["/src", "/src"],
        ["/src", "/src/inner"],
        ["/src/lib", "/src"],
        ["/", "/x"],
        ["/src", "/"],
        ["/notes.md", "/./notes.md"],
      ]) {
        assert.equal(await b[op](from, to), { error: errors.relocateOntoItself(op, from, to) }, `${op} ${from} ${to}`);
      }
    }
    assert.equal(await tree(b), before);
  });

  t("bad input: a missing source, an invalid path, overwrite not a boolean, a new path too long", async () => {
    const b = await fresh();
    await seed(b);
    assert.equal(await b.move("/nope", "/x"), { error: errors.notFound("/nope") });
    assert.equal(await b.copy("/nope/deeper", "/x"), { error: errors.notFound("/nope/deeper") });
    assert.match((await b.move("/src", "/a\u0000b")).error!, /^Error: Invalid path/);
    assert.match((await b.copy("../../etc", "/x")).error!, /^Error: Invalid path/);
    assert.equal(await b.move("/src", "/x", { overwrite: "yes" as unknown as boolean }), {
      error: errors.invalidOverwrite("yes"),
    });
    // a target within the path limit whose files' new paths are not (on S3 the key limit, which
    // counts the prefix and workspace too, may refuse the target itself first)
    const long = `/${"d".repeat(200)}/${"e".repeat(200)}/${"f".repeat(200)}/${"g".repeat(200)}/${"h".repeat(210)}`;
    const r = await b.move("/src", long);
    assert.match(r.error!, /^Error: Invalid path '[^']*': (path is longer than 1024 bytes|.*S3 allows 1024)/);
    assert.ok(Buffer.byteLength(long, "utf8") <= MAX_PATH_BYTES);
    assert.is(await text(b, "/src/lib/deep/c.md"), "# c\n");
  });

  t.run();
}
