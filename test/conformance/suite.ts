/**
 * The protocol conformance suite: one case per rule of docs/PROTOCOL.md, run against any backend.
 * A backend factory gives each case a fresh, empty workspace.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { DeepAgentsBackend } from "../../src/core/interface.js";
import { EMPTY_FILE_CONTENT } from "../../src/protocol.js";

export interface ConformanceTarget {
  /** A fresh, empty workspace (its own backend view). */
  fresh(options?: { maxFileBytes?: number }): Promise<DeepAgentsBackend>;
  /** Called once at the end. */
  close(): Promise<void>;
  /** Granularity of modified_at (S3's LastModified is whole seconds). Default 1 ms. */
  timestampResolutionMs?: number;
  /**
   * Concurrent edits of one file cannot lose updates. False for an S3 endpoint that does not
   * enforce If-Match: the concurrency case is then reported as skipped, not passed.
   */
  atomicEdits?: boolean;
}

const PNG = Buffer.from("89504e470d0a1a0a0000000d4948445200000001000000010806000000", "hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const paths = (r: { files?: { path: string }[] }) => (r.files ?? []).map((f) => f.path);
const bytes = (u: Uint8Array | string | null | undefined) => (u instanceof Uint8Array ? Buffer.from(u) : null);

async function seed(b: DeepAgentsBackend, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    const r = await b.write(path, content);
    assert.is(r.error, undefined, `seed ${path}: ${r.error}`);
  }
}

export function conformance(name: string, target: ConformanceTarget): void {
  const t = suite(`conformance: ${name}`);
  // Long enough for modified_at to move on, whatever the backend's timestamp granularity.
  const tick = () => sleep((target.timestampResolutionMs ?? 1) + 4);
  t.after(() => target.close());

  // ---- paths -------------------------------------------------------------------------------
  t("paths: relative, doubled slashes and '.' are normalised", async () => {
    const b = await target.fresh();
    assert.is((await b.write("notes/a.txt", "x")).error, undefined);
    assert.is((await b.read("/notes/a.txt")).content, "x");
    assert.is((await b.write("//notes//./b.txt", "y")).error, undefined);
    assert.equal(paths(await b.ls("/notes")), ["/notes/a.txt", "/notes/b.txt"]);
    assert.is((await b.write("/notes/sub/../c.txt", "z")).error, undefined);
    assert.is((await b.read("/notes/c.txt")).content, "z");
  });

  t("paths: hostile paths are refused with a clear error and change nothing", async () => {
    const b = await target.fresh();
    for (const hostile of ["/../etc/passwd", "../x", "/a/../../x", "/a\u0000b", "C:\\Users\\x", "C:/x", "/a\nb"]) {
      const w = await b.write(hostile, "x");
      assert.match(w.error ?? "", /Invalid path/, `write ${JSON.stringify(hostile)}`);
      assert.match((await b.read(hostile)).error ?? "", /Invalid path/);
      assert.match((await b.edit(hostile, "a", "b")).error ?? "", /Invalid path/);
      assert.match((await b.ls(hostile)).error ?? "", /Invalid path/);
      assert.match((await b.grep("x", hostile)).error ?? "", /Invalid path/);
    }
    assert.match((await b.write("/" + "a".repeat(300), "x")).error ?? "", /longer than/);
    assert.equal((await b.ls("/")).files, []);
  });

  // ---- ls ----------------------------------------------------------------------------------
  t("ls: immediate children, directories with '/', sorted, sizes in bytes", async () => {
    const b = await target.fresh();
    await seed(b, {
      "/d/b.txt": "héllo",
      "/d/a.txt": "",
      "/d/sub/x.txt": "1",
      "/d/sub/deep/y.txt": "2",
      "/d/z/q.md": "3",
      "/top.txt": "t",
    });
    const ls = await b.ls("/d");
    assert.equal(
      ls.files!.map((f) => [f.path, f.is_dir, f.size]),
      [
        ["/d/a.txt", false, 0],
        ["/d/b.txt", false, 6],
        ["/d/sub/", true, 0],
        ["/d/z/", true, 0],
      ],
    );
    for (const f of ls.files!) {
      if (f.is_dir) assert.is(f.modified_at, "");
      else assert.ok(!Number.isNaN(Date.parse(f.modified_at!)));
    }
    assert.equal(await b.ls("/d/"), ls);
    assert.equal(paths(await b.ls("/")), ["/d/", "/top.txt"]);
  });

  t("ls: names that sort around '/' do not confuse directory detection", async () => {
    const b = await target.fresh();
    await seed(b, {
      "/p/a/x": "1",
      "/p/a-b/x": "1",
      "/p/a.txt": "1",
      "/p/a0/x": "1",
      "/p/a/y/z": "1",
      "/p/b": "1",
      "/p2/x": "1",
    });
    assert.equal(
      paths(await b.ls("/p")),
      ["/p/a-b/", "/p/a.txt", "/p/a/", "/p/a0/", "/p/b"].sort((x, y) => x.localeCompare(y)),
    );
  });

  t("ls: a missing directory or a file path lists nothing, without error", async () => {
    const b = await target.fresh();
    await seed(b, { "/f.txt": "x" });
    assert.equal(await b.ls("/missing"), { files: [] });
    assert.equal(await b.ls("/f.txt"), { files: [] });
  });

  // ---- read --------------------------------------------------------------------------------
  t("read: windows, line numbers and nextOffset", async () => {
    const b = await target.fresh();
    await seed(b, { "/r.txt": "l1\nl2\nl3\nl4\nl5\n" });
    assert.equal(await b.read("/r.txt"), {
      content: "l1\nl2\nl3\nl4\nl5\n",
      mimeType: "text/plain",
      totalLines: 5,
      startLine: 1,
      endLine: 5,
    });
    assert.equal(await b.read("/r.txt", 1, 2), {
      content: "l2\nl3",
      mimeType: "text/plain",
      totalLines: 5,
      startLine: 2,
      endLine: 3,
      nextOffset: 3,
    });
    assert.equal(await b.read("/r.txt", 4, 10), {
      content: "l5\n",
      mimeType: "text/plain",
      totalLines: 5,
      startLine: 5,
      endLine: 5,
    });
    // floors, and negatives clamp to 0
    assert.equal(await b.read("/r.txt", 1.9, 2.5), await b.read("/r.txt", 1, 2));
    assert.equal(await b.read("/r.txt", -3, 1), await b.read("/r.txt", 0, 1));
  });

  t("read: \\r is kept, lines split on \\n only; no trailing newline", async () => {
    const b = await target.fresh();
    await seed(b, { "/crlf.txt": "a\r\nb\r\nc" });
    const r = await b.read("/crlf.txt", 1, 5);
    assert.is(r.content, "b\r\nc");
    assert.is(r.totalLines, 3);
    assert.is(r.endLine, 3);
    assert.is(r.nextOffset, undefined);
  });

  t("read: empty file, offset past the end, missing file", async () => {
    const b = await target.fresh();
    await seed(b, { "/empty.txt": "", "/two.txt": "a\nb\n" });
    assert.equal(await b.read("/empty.txt"), { content: EMPTY_FILE_CONTENT, mimeType: "text/plain" });
    assert.equal(await b.read("/two.txt", 2, 10), { error: "Line offset 2 exceeds file length (2 lines)" });
    assert.equal(await b.read("/nope.txt"), { error: "File '/nope.txt' not found" });
  });

  t("read: binary by extension returns all bytes, offset/limit ignored", async () => {
    const b = await target.fresh();
    assert.is((await b.write("/img.png", PNG.toString("base64"))).error, undefined);
    const r = await b.read("/img.png", 5, 1);
    assert.is(r.mimeType, "image/png");
    assert.ok(bytes(r.content)?.equals(PNG));
    assert.is((await b.write("/doc.pdf", "data:application/pdf;base64," + PNG.toString("base64"))).error, undefined);
    assert.ok(bytes((await b.read("/doc.pdf")).content)?.equals(PNG));
  });

  // ---- readRaw -----------------------------------------------------------------------------
  t("readRaw: content, mime type and ISO timestamps; missing file", async () => {
    const b = await target.fresh();
    await seed(b, { "/raw.md": "# x\r\n" });
    const r = await b.readRaw("/raw.md");
    assert.is(r.data!.content, "# x\r\n");
    assert.is((r.data as { mimeType: string }).mimeType, "text/markdown");
    assert.ok(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(r.data!.created_at));
    assert.equal(await b.readRaw("/missing.md"), { error: "File '/missing.md' not found" });
  });

  // ---- write -------------------------------------------------------------------------------
  t("write: creates, overwrites, keeps created_at, returns filesUpdate null", async () => {
    const b = await target.fresh();
    const w = await b.write("/w.txt", "one");
    assert.is(w.path, "/w.txt");
    assert.is(w.filesUpdate, null);
    const first = (await b.readRaw("/w.txt")).data!;
    await tick();
    assert.is((await b.write("/w.txt", "two")).error, undefined);
    const second = (await b.readRaw("/w.txt")).data!;
    assert.is(second.content, "two");
    assert.is(second.created_at, first.created_at);
    assert.ok(second.modified_at > first.modified_at);
  });

  t("write: bad content is refused and changes nothing", async () => {
    const b = await target.fresh({ maxFileBytes: 1000 });
    await seed(b, { "/keep.txt": "original" });
    assert.match((await b.write("/keep.txt", "a\u0000b")).error ?? "", /not valid text/);
    assert.match((await b.write("/keep.txt", "bad \ud800 surrogate")).error ?? "", /not valid text/);
    assert.match((await b.write("/keep.txt", "x".repeat(1001))).error ?? "", /too large/);
    assert.match((await b.write("/p.png", "not base64!")).error ?? "", /base64/);
    assert.is((await b.read("/keep.txt")).content, "original");
    assert.equal(paths(await b.ls("/")), ["/keep.txt"]);
  });

  // ---- edit --------------------------------------------------------------------------------
  t("edit: every error string of the protocol", async () => {
    const b = await target.fresh();
    await seed(b, { "/e.txt": "foo bar foo", "/empty.txt": "" });
    assert.equal(await b.edit("/missing.txt", "a", "b"), { error: "Error: File '/missing.txt' not found" });
    assert.equal(await b.edit("/e.txt", "", "x"), { error: "Error: oldString cannot be empty when file has content" });
    assert.equal(await b.edit("/e.txt", "zzz", "x"), { error: "Error: String not found in file: 'zzz'" });
    assert.equal(await b.edit("/e.txt", "foo", "x"), {
      error:
        "Error: String 'foo' has multiple occurrences (appears 2 times) in file. Use replace_all=True to replace all instances, or provide a more specific string with surrounding context.",
    });
    assert.is((await b.read("/e.txt")).content, "foo bar foo");
  });

  t("edit: single, replaceAll, empty file, literal '$'", async () => {
    const b = await target.fresh();
    await seed(b, { "/e.txt": "foo bar foo", "/empty.txt": "", "/d.txt": "price" });
    const one = await b.edit("/e.txt", "bar", "baz");
    assert.is(one.occurrences, 1);
    assert.is(one.filesUpdate, null);
    assert.is(one.path, "/e.txt");
    const all = await b.edit("/e.txt", "foo", "q", true);
    assert.is(all.occurrences, 2);
    assert.is((await b.read("/e.txt")).content, "q baz q");
    const init = await b.edit("/empty.txt", "", "hello");
    assert.is(init.occurrences, 0);
    assert.is((await b.read("/empty.txt")).content, "hello");
    await b.edit("/d.txt", "price", "$& $1 $$");
    assert.is((await b.read("/d.txt")).content, "$& $1 $$");
  });

  t("edit: occurrences are non-overlapping, left to right", async () => {
    const b = await target.fresh();
    await seed(b, { "/o.txt": "aaaa" });
    assert.match((await b.edit("/o.txt", "aa", "b")).error ?? "", /appears 2 times/);
    assert.is((await b.edit("/o.txt", "aaa", "b")).occurrences, 1);
    assert.is((await b.read("/o.txt")).content, "ba");
  });

  (target.atomicEdits === false ? t.skip : t)("edit: concurrent edits of different strings all land", async () => {
    const b = await target.fresh();
    const tokens = Array.from({ length: 16 }, (_, i) => `<tok${i}>`);
    await seed(b, { "/c.txt": tokens.join("\n") });
    const results = await Promise.all(tokens.map((tok, i) => b.edit("/c.txt", tok, `done${i}`)));
    for (const r of results) assert.is(r.error, undefined);
    assert.is((await b.read("/c.txt")).content, tokens.map((_, i) => `done${i}`).join("\n"));
  });

  // ---- grep --------------------------------------------------------------------------------
  t("grep: literal, not regex; binary files skipped; ordered by path then line", async () => {
    const b = await target.fresh();
    await seed(b, { "/b.txt": "x.y\nl.\n[\nfoo", "/a.txt": "l.\nnothing\nl.l." });
    await b.write("/img.png", Buffer.from("l. inside png").toString("base64"));
    assert.equal((await b.grep("l.")).matches, [
      { path: "/a.txt", line: 1, text: "l." },
      { path: "/a.txt", line: 3, text: "l.l." },
      { path: "/b.txt", line: 2, text: "l." },
    ]);
    assert.equal((await b.grep("[")).matches, [{ path: "/b.txt", line: 3, text: "[" }]);
    assert.equal((await b.grep("%")).matches, []);
    assert.equal((await b.grep("x_y")).matches, []);
  });

  t("grep: path is an exact file or a directory prefix (/src never /src2)", async () => {
    const b = await target.fresh();
    await seed(b, { "/src/a.ts": "needle", "/src2/b.ts": "needle", "/src/deep/c.ts": "needle", "/srcfile": "needle" });
    assert.equal(
      (await b.grep("needle", "/src")).matches!.map((m) => m.path),
      ["/src/a.ts", "/src/deep/c.ts"],
    );
    assert.equal(
      (await b.grep("needle", "/src/")).matches!.map((m) => m.path),
      ["/src/a.ts", "/src/deep/c.ts"],
    );
    assert.equal(
      (await b.grep("needle", "/src/a.ts")).matches!.map((m) => m.path),
      ["/src/a.ts"],
    );
    assert.equal((await b.grep("needle", "/nowhere")).matches, []);
  });

  t("grep: glob filter on basename at any depth; with '/' relative to the search path", async () => {
    const b = await target.fresh();
    await seed(b, { "/r/a.py": "hit", "/r/x/b.py": "hit", "/r/x/c.ts": "hit", "/r/.hidden.py": "hit" });
    assert.equal(
      (await b.grep("hit", "/", "*.py")).matches!.map((m) => m.path),
      ["/r/.hidden.py", "/r/a.py", "/r/x/b.py"],
    );
    assert.equal(
      (await b.grep("hit", "/r", "x/*.ts")).matches!.map((m) => m.path),
      ["/r/x/c.ts"],
    );
    assert.equal((await b.grep("hit", "/", "*.{ts,py}")).matches!.length, 4);
  });

  t("grep: maxCount caps matches and flags truncated", async () => {
    const b = await target.fresh();
    await seed(b, { "/m1.txt": "hit\nhit\nhit", "/m2.txt": "hit\nhit" });
    const capped = await b.grep("hit", "/", null, 3);
    assert.equal(
      capped.matches!.map((m) => [m.path, m.line]),
      [
        ["/m1.txt", 1],
        ["/m1.txt", 2],
        ["/m1.txt", 3],
      ],
    );
    assert.is(capped.truncated, true);
    const exact = await b.grep("hit", "/", null, 5);
    assert.is(exact.matches!.length, 5);
    assert.is(exact.truncated, undefined);
    assert.is((await b.grep("hit")).matches!.length, 5);
  });

  t(
    "grepStream/searchStream: grep's and search's matches in their order; an error is thrown; a break stops it",
    async () => {
      const b = await target.fresh();
      const files: Record<string, string> = { "/img.png": "" };
      for (let i = 0; i < 40; i++) files[`/s/f${String(i).padStart(2, "0")}.txt`] = `hit ${i}\nmiss\nHIT again`;
      await seed(b, { ...files, "/other/x.md": "hit", "/s/sub/y.md": "miss\nhit" });
      const collect = async (stream: AsyncIterable<{ path: string; line: number; text: string }>) => {
        const rows = [];
        for await (const m of stream) rows.push(m);
        return rows;
      };
      for (const [path, glob, maxCount] of [
        ["/", null, null],
        ["/s", "*.md", null],
        ["/s/f07.txt", null, null],
        ["/", null, 7],
      ] as const) {
        const want = (await b.grep("hit", path, glob, maxCount)).matches;
        assert.ok(want?.length, `grep ${path} ${glob}`);
        assert.equal(await collect(b.grepStream("hit", path, glob, maxCount)), want, `grepStream ${path} ${glob}`);
      }
      const options = { pattern: "^hit \\d*[05]$", regex: true, ignoreCase: true, path: "/s" };
      const want = (await b.search(options)).matches;
      assert.is(want?.length, 8);
      assert.equal(await collect(b.searchStream(options)), want);
      assert.equal(await collect(b.grepStream("nothing like it")), []);
      const bad = await b.search({ pattern: "(", regex: true });
      await collect(b.searchStream({ pattern: "(", regex: true })).then(
        () => assert.unreachable("no error"),
        (e) => assert.is((e as Error).message, bad.error),
      );
      let taken = 0;
      for await (const _ of b.grepStream("hit")) if (++taken === 3) break;
      assert.is(taken, 3);
      assert.is((await b.grep("hit")).matches?.length, 42); // the store still answers after the break
    },
  );

  // ---- glob --------------------------------------------------------------------------------
  t("glob: relative to path, dot files, braces, files only, newest first", async () => {
    const b = await target.fresh();
    await seed(b, { "/a.md": "1" });
    await tick();
    await seed(b, { "/dir/b.md": "2" });
    await tick();
    await seed(b, { "/dir/.c.md": "3", "/dir/sub/d.ts": "4" });
    assert.equal(paths(await b.glob("*.md")), ["/a.md"]);
    const all = paths(await b.glob("**/*.md"));
    assert.equal(new Set(all), new Set(["/a.md", "/dir/b.md", "/dir/.c.md"]));
    assert.is(all[all.length - 1], "/a.md"); // oldest last
    assert.equal(paths(await b.glob("*.md", "/dir")).sort(), ["/dir/.c.md", "/dir/b.md"]);
    assert.equal(paths(await b.glob("**/*.{md,ts}", "/dir")).sort(), ["/dir/.c.md", "/dir/b.md", "/dir/sub/d.ts"]);
    assert.equal(paths(await b.glob("sub", "/dir")), []); // directories are not files
    const info = (await b.glob("*.md", "/dir")).files![0];
    assert.is(info.is_dir, false);
    assert.ok(typeof info.size === "number" && info.modified_at);
  });

  t("glob: an exact file path, and an absolute pattern from the root", async () => {
    const b = await target.fresh();
    await seed(b, { "/dir/x/a.md": "1", "/dir/b.md": "2", "/other/c.md": "3" });
    assert.equal(paths(await b.glob("*.md", "/dir/b.md")), ["/dir/b.md"]);
    assert.equal(paths(await b.glob("/dir/**/*.md", "/other")).sort(), ["/dir/b.md", "/dir/x/a.md"]);
    assert.equal(paths(await b.glob("x/*.md", "/dir")), ["/dir/x/a.md"]);
  });

  // ---- delete ------------------------------------------------------------------------------
  t("delete: recursive, literal glob characters, missing file", async () => {
    const b = await target.fresh();
    await seed(b, { "/t/a.txt": "1", "/t/s/b.txt": "2", "/t2/c.txt": "3", "/a*": "star", "/ab": "4" });
    assert.equal(await b.delete("/t"), { path: "/t", filesUpdate: null });
    assert.equal(paths(await b.ls("/")), ["/a*", "/ab", "/t2/"]);
    await b.delete("/a*");
    assert.equal(paths(await b.ls("/")), ["/ab", "/t2/"]);
    assert.equal(await b.delete("/t"), { error: "Error: File '/t' not found" });
    assert.is((await b.delete("/")).error, undefined);
    assert.equal(await b.ls("/"), { files: [] });
  });

  // ---- upload / download -------------------------------------------------------------------
  t("upload/download: input order, byte-exact, error codes", async () => {
    const b = await target.fresh();
    const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]); // not UTF-8
    const bom = Buffer.from("\ufeffbom\r\n", "utf8");
    const up = await b.uploadFiles([
      ["/u/latin1.txt", latin1],
      ["/u/bom.txt", bom],
      ["/u/pic.png", PNG],
      ["/../bad", Buffer.from("x")],
      ["/u/", Buffer.from("x")],
    ]);
    assert.equal(up, [
      { path: "/u/latin1.txt", error: null },
      { path: "/u/bom.txt", error: null },
      { path: "/u/pic.png", error: null },
      { path: "/../bad", error: "invalid_path" },
      { path: "/u/", error: "is_directory" },
    ]);
    const down = await b.downloadFiles(["/u/pic.png", "/u/missing.txt", "/u/latin1.txt", "/u", "/u/bom.txt", "/../x"]);
    assert.equal(
      down.map((d) => [d.path, d.error]),
      [
        ["/u/pic.png", null],
        ["/u/missing.txt", "file_not_found"],
        ["/u/latin1.txt", null],
        ["/u", "is_directory"],
        ["/u/bom.txt", null],
        ["/../x", "invalid_path"],
      ],
    );
    assert.ok(bytes(down[0].content)?.equals(PNG));
    assert.ok(bytes(down[2].content)?.equals(latin1));
    assert.ok(bytes(down[4].content)?.equals(bom));
    assert.is((await b.read("/u/bom.txt")).content, "\ufeffbom\r\n");
    const again = await b.uploadFiles([["/u/bom.txt", Buffer.from("new")]]);
    assert.equal(again, [{ path: "/u/bom.txt", error: null }]);
    assert.is((await b.read("/u/bom.txt")).content, "new");
  });

  t("upload: overwriting a file keeps its created_at, as write and edit do", async () => {
    const b = await target.fresh();
    assert.is((await b.write("/k.txt", "one")).error, undefined);
    const first = (await b.readRaw("/k.txt")).data!;
    await tick();
    assert.equal(await b.uploadFiles([["/k.txt", Buffer.from("two")]]), [{ path: "/k.txt", error: null }]);
    const second = (await b.readRaw("/k.txt")).data!;
    assert.is(second.content, "two");
    assert.is(second.created_at, first.created_at);
    assert.ok(second.modified_at > first.modified_at);
  });
  t.run();
}
