/**
 * The history conformance suite: what VersionedWorkspace promises (src/core/history.ts), run
 * against PostgreSQL and against S3 with bucket versioning (Ceph RGW). Each case gets a fresh,
 * empty workspace.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { randomBytes } from "node:crypto";
import type { VersionedWorkspace } from "../../src/core/history.js";
import type { DeepAgentsBackend } from "../../src/core/interface.js";

export type Versioned = DeepAgentsBackend<number | string> & VersionedWorkspace;

export interface HistoryTarget {
  fresh(): Promise<Versioned>;
  close(): Promise<void>;
  /** Versions carry the id of the change that wrote them (PostgreSQL's change log). */
  changeIds: boolean;
}

export async function rejects(fn: () => Promise<unknown>, expected: RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.match((e as Error).message, expected);
    return;
  }
  assert.unreachable(`expected a rejection matching ${expected}`);
}

/** Every file of a workspace with its bytes, as downloadFiles gives them. */
export async function snapshot(b: DeepAgentsBackend<number | string>): Promise<Record<string, string>> {
  const files = (await b.glob("**/*")).files ?? [];
  const paths = files.map((f) => f.path).sort();
  const got = await b.downloadFiles(paths);
  return Object.fromEntries(got.map((g) => [g.path, Buffer.from(g.content ?? []).toString("base64")]));
}

/** A version's whole text through readVersion (no window limit). */
export async function textOf(b: VersionedWorkspace, path: string, version: number): Promise<string> {
  const r = await b.readVersion(path, version, 0, 1_000_000);
  assert.ok(!r.error, r.error);
  return r.content as string;
}

export function historyConformance(name: string, target: HistoryTarget): void {
  const t = suite(`history: ${name}`);
  t.after(() => target.close());

  t("history: write, edit, delete, re-create -- versions, ops, sizes, every version readable", async () => {
    const b = await target.fresh();
    await b.write("/a.txt", "one\n");
    await b.edit("/a.txt", "one", "two");
    await b.delete("/a.txt");
    await b.write("/a.txt", "three\n");
    const h = await b.history("/a.txt");
    assert.ok(h.versions, h.error);
    assert.equal(
      h.versions.map((v) => [v.version, v.op, v.size]),
      [
        [1, "create", 4],
        [2, "update", 4],
        [2, "delete", 4],
        [3, "create", 6],
      ],
    );
    if (target.changeIds) {
      const ids = h.versions.map((v) => v.changeId!);
      assert.ok(
        ids.every((id, i) => Number.isSafeInteger(id) && (i === 0 || id > ids[i - 1])),
        String(ids),
      );
    }
    assert.equal(await textOf(b, "/a.txt", 1), "one\n");
    assert.equal(await textOf(b, "/a.txt", 2), "two\n");
    assert.equal(await textOf(b, "/a.txt", 3), "three\n");
    assert.equal(await b.history("/never.txt"), { error: "Error: no history kept for '/never.txt'" });
    assert.equal((await b.readVersion("/a.txt", 9)).error, "Error: version 9 of '/a.txt' is not kept");
  });

  t("readVersion: windows, binary files, empty files and mime types as read() gives them", async () => {
    const b = await target.fresh();
    const text = `${Array.from({ length: 30 }, (_, i) => `row ${i}`).join("\n")}\n`;
    await b.write("/w.md", text);
    for (const [offset, limit] of [
      [0, 500],
      [5, 3],
      [29, 5],
      [30, 5],
      [100, 1],
    ]) {
      assert.equal(
        await b.readVersion("/w.md", 1, offset, limit),
        await b.read("/w.md", offset, limit),
        `${offset}/${limit}`,
      );
    }
    const png = new Uint8Array(randomBytes(3000));
    await b.uploadFiles([["/img.png", png]]);
    await b.uploadFiles([["/img.png", new Uint8Array(randomBytes(10))]]);
    const old = await b.readVersion("/img.png", 1);
    assert.equal(Buffer.from(old.content as Uint8Array), Buffer.from(png));
    assert.is(old.mimeType, "image/png");
    await b.write("/empty.txt", "");
    const emptyNow = await b.read("/empty.txt");
    await b.write("/empty.txt", "now full");
    assert.equal(await b.readVersion("/empty.txt", 1), emptyNow);
  });

  t("restore: an earlier version becomes the newest; a deleted path comes back; the past is kept", async () => {
    const b = await target.fresh();
    await b.write("/r.txt", "first");
    await b.write("/r.txt", "second");
    assert.is((await b.restore("/r.txt", 1)).error, undefined);
    assert.is((await b.readRaw("/r.txt")).data?.content, "first");
    await b.delete("/r.txt");
    assert.is((await b.restore("/r.txt", 2)).error, undefined);
    assert.is((await b.readRaw("/r.txt")).data?.content, "second");
    assert.equal(
      (await b.history("/r.txt")).versions?.map((v) => `${v.op}:${v.version}`),
      ["create:1", "update:2", "update:3", "delete:3", "create:4"],
      "a restore is a new version; versions are never reused",
    );
    assert.equal(await textOf(b, "/r.txt", 3), "first");
    assert.equal((await b.restore("/r.txt", 77)).error, "Error: version 77 of '/r.txt' is not kept");
    assert.ok((await b.restore("/r.txt", 0)).error?.includes("version must be a positive integer"));
  });

  t("checkpoint + rewind: the exact earlier state, undoable, dry run first, a subtree alone", async () => {
    const b = await target.fresh();
    await b.uploadFiles([
      ["/src/a.ts", Buffer.from("export const a = 1;\n")],
      ["/src/b.ts", Buffer.from("export const b = 2;\n")],
      ["/doc/readme.md", Buffer.from("# hello\n")],
    ]);
    const cp = await b.checkpoint({ label: "before the agent", tag: "run-1" });
    assert.equal([cp.label, cp.tag], ["before the agent", "run-1"]);
    assert.equal(
      (await b.checkpoints()).map((c) => [c.id, c.label]),
      [[cp.id, "before the agent"]],
    );
    const before = await snapshot(b);

    // What an agent might do: edit, delete, create, replace a file by a directory.
    await b.edit("/src/a.ts", "1", "100");
    await b.delete("/src/b.ts");
    await b.write("/src/c.ts", "new\n");
    await b.delete("/doc/readme.md");
    await b.write("/doc/readme.md/inner.md", "a file where a file was\n");
    const after = await snapshot(b);

    const dry = await b.rewind(cp.id, { dryRun: true });
    assert.is(dry.dryRun, true);
    assert.is(dry.undo, null);
    assert.equal(
      dry.changes.map((c) => [c.path, c.op, c.before?.size ?? null, c.after?.size ?? null]),
      [
        ["/doc/readme.md", "created", null, 8],
        ["/doc/readme.md/inner.md", "deleted", 24, null],
        ["/src/a.ts", "updated", 22, 20],
        ["/src/b.ts", "created", null, 20],
        ["/src/c.ts", "deleted", 4, null],
      ],
    );
    assert.equal(await snapshot(b), after, "a dry run changes nothing");

    const done = await b.rewind(cp.id);
    assert.equal(await snapshot(b), before);
    assert.ok(done.undo);
    assert.ok(done.changes.every((c) => c.op !== "deleted" || c.written === null));
    const history = (await b.history("/src/a.ts")).versions!;
    assert.equal(
      history.map((v) => v.op),
      ["create", "update", "update"],
      "a rewind is a new version, the past is kept",
    );

    await b.rewind(done.undo!);
    assert.equal(await snapshot(b), after, "rewinding to the undo checkpoint undoes the rewind");
    assert.equal(
      (await b.rewind(cp.id, { paths: ["/src"] })).changes.map((c) => c.path),
      ["/src/a.ts", "/src/b.ts", "/src/c.ts"],
    );
    const partial = await snapshot(b);
    assert.is(partial["/src/c.ts"], undefined);
    assert.is(partial["/doc/readme.md/inner.md"], after["/doc/readme.md/inner.md"], "outside the scope: untouched");
    assert.equal((await b.rewind(cp.id, { paths: ["/src"] })).changes, [], "nothing left to do");

    assert.is(await b.deleteCheckpoint(cp.id), true);
    assert.is(await b.deleteCheckpoint(cp.id), false);
    assert.not.ok((await b.checkpoints()).some((c) => c.id === cp.id));
    await rejects(() => b.rewind(cp.id), new RegExp(`checkpoint ${cp.id} does not exist`));
  });

  t("diff: paths between two checkpoints or to now, with unified patches for text only", async () => {
    const b = await target.fresh();
    await b.write("/t.txt", "alpha\nbeta\ngamma\n");
    await b.uploadFiles([["/bin.dat", new Uint8Array([0, 1, 2, 3])]]);
    const c1 = await b.checkpoint();
    await b.edit("/t.txt", "beta", "BETA");
    await b.uploadFiles([["/bin.dat", new Uint8Array([9, 9])]]);
    await b.write("/n.txt", "fresh\n");
    const c2 = await b.checkpoint();
    await b.delete("/n.txt");
    const d = await b.diff(c1.id, c2.id, { unified: true });
    assert.equal(
      d.map((c) => [c.path, c.op, c.binary, c.before?.size ?? null, c.after?.size ?? null]),
      [
        ["/bin.dat", "updated", true, 4, 2],
        ["/n.txt", "created", false, null, 6],
        ["/t.txt", "updated", false, 17, 17],
      ],
    );
    assert.is(d[0].patch, undefined);
    assert.ok(d[2].patch?.includes("-beta\n+BETA"), d[2].patch);
    assert.equal(
      (await b.diff(c2.id)).map((c) => [c.path, c.op]),
      [["/n.txt", "deleted"]],
    );
    assert.equal(
      (await b.diff(c1.id)).map((c) => c.path),
      ["/bin.dat", "/t.txt"],
      "n.txt came and went",
    );
    assert.equal(await b.diff(c1.id, c1.id), []);
    await rejects(() => b.diff(999999), /checkpoint 999999 does not exist/);
    await rejects(() => b.diff(c1.id, 888888), /checkpoint 888888 does not exist/);
  });

  t("bad input: one clear error, nothing changed", async () => {
    const b = await target.fresh();
    await b.write("/x.txt", "x");
    assert.match((await b.readVersion("/x.txt", -1)).error!, /version must be a positive integer/);
    assert.match((await b.history("../x")).error!, /Invalid path/);
    await rejects(() => b.checkpoint({ label: "a\nb" }), /label must be a string of at most 200 characters/);
    await rejects(() => b.rewind(1.5), /checkpoint must be a positive integer/);
    await rejects(() => b.rewind(424242), /checkpoint 424242 does not exist in workspace/);
    assert.equal(await b.checkpoints(), []);
    assert.equal((await b.history("/x.txt")).versions?.length, 1);
  });

  t("fork: the files now, in a new workspace; writes in either never show in the other", async () => {
    const b = await target.fresh();
    const texts = ["export const a = 'alpha-token';\n", "# beta\nbeta-token here\n"];
    await b.write("/src/a.ts", texts[0]);
    await b.write("/docs/b.md", texts[1]);
    await b.uploadFiles([["/img.bin", Uint8Array.from([0, 1, 2, 255])]]);
    const before = await snapshot(b);
    const name = `${b.workspace}-fork`;
    const r = await b.fork(name);
    assert.equal(r, { workspace: name, files: 3, bytes: Buffer.byteLength(texts.join("")) + 4, at: null, versions: 0 });
    const f = b.withWorkspace(name) as Versioned;
    assert.equal(await snapshot(f), before);
    assert.equal((await f.grep("beta-token")).matches, [{ path: "/docs/b.md", line: 2, text: "beta-token here" }]);
    // Each side changes on its own.
    await f.edit("/src/a.ts", "alpha-token", "fork-token");
    await b.edit("/docs/b.md", "beta-token", "source-token");
    await f.delete("/img.bin");
    await b.write("/only-source.txt", "s\n");
    assert.equal(
      (await f.grep("fork-token")).matches?.map((m) => m.path),
      ["/src/a.ts"],
    );
    assert.equal((await b.grep("fork-token")).matches, []);
    assert.equal(
      (await b.grep("alpha-token")).matches?.map((m) => m.path),
      ["/src/a.ts"],
    );
    assert.equal((await f.grep("alpha-token")).matches, []);
    assert.equal(
      (await f.grep("beta-token")).matches?.map((m) => m.path),
      ["/docs/b.md"],
    );
    assert.equal((await b.grep("beta-token")).matches, []);
    assert.equal((await f.read("/docs/b.md")).content, "# beta\nbeta-token here\n");
    assert.equal((await b.read("/src/a.ts")).content, "export const a = 'alpha-token';\n");
    assert.ok((await b.downloadFiles(["/img.bin"]))[0].content, "the source keeps what the fork deleted");
    assert.equal((await f.downloadFiles(["/only-source.txt"]))[0].error, "file_not_found");
    // The source, deleted whole, takes nothing of the fork with it.
    await b.delete("/src");
    assert.equal((await f.read("/src/a.ts")).content, "export const a = 'fork-token';\n");
    assert.equal(
      (await f.grep("fork-token")).matches?.map((m) => m.path),
      ["/src/a.ts"],
    );
  });

  t("fork at a checkpoint: the files as they were then", async () => {
    const b = await target.fresh();
    await b.write("/keep.txt", "kept\n");
    await b.write("/changed.txt", "old text\n");
    await b.write("/gone.txt", "deleted later\n");
    const then = await snapshot(b);
    const c = await b.checkpoint({ label: "then" });
    await b.edit("/changed.txt", "old", "new");
    await b.delete("/gone.txt");
    await b.write("/later.txt", "created later\n");
    const name = `${b.workspace}-at`;
    const r = await b.fork(name, { at: c.id });
    assert.equal([r.files, r.at], [3, c.id]);
    const f = b.withWorkspace(name) as Versioned;
    assert.equal(await snapshot(f), then);
    assert.equal(
      (await f.grep("old text")).matches?.map((m) => m.path),
      ["/changed.txt"],
    );
    assert.equal(
      (await f.grep("deleted later")).matches?.map((m) => m.path),
      ["/gone.txt"],
    );
    assert.equal((await f.grep("created later")).matches, []);
  });

  t("fork with history: each file's versions come along, numbered alike; restore works in the fork alone", async () => {
    const b = await target.fresh();
    await b.write("/a.txt", "one\n");
    await b.edit("/a.txt", "one", "two");
    await b.edit("/a.txt", "two", "three");
    await b.write("/gone.txt", "bye\n");
    await b.delete("/gone.txt");
    await b.write("/b.txt", "bee\n");
    const name = `${b.workspace}-hist`;
    const r = await b.fork(name, { history: true });
    assert.equal([r.files, r.bytes, r.at], [2, 10, null]);
    assert.ok(r.versions >= 5, `${r.versions} versions copied`);
    const f = b.withWorkspace(name) as Versioned;
    const shape = async (w: Versioned, path: string) =>
      (await w.history(path)).versions?.map((v) => [v.version, v.op, v.size]);
    for (const path of ["/a.txt", "/gone.txt", "/b.txt"])
      assert.equal(await shape(f, path), await shape(b, path), path);
    assert.equal(
      [await textOf(f, "/a.txt", 1), await textOf(f, "/a.txt", 2), await textOf(f, "/a.txt", 3)],
      ["one\n", "two\n", "three\n"],
    );
    // Restores in the fork are new versions there; the source keeps its own.
    assert.ok(!(await f.restore("/a.txt", 1)).error);
    assert.ok(!(await f.restore("/gone.txt", 1)).error);
    assert.equal([(await f.read("/a.txt")).content, (await f.read("/gone.txt")).content], ["one\n", "bye\n"]);
    assert.equal((await f.history("/a.txt")).versions?.length, 4);
    assert.equal((await b.read("/a.txt")).content, "three\n");
    assert.equal((await b.history("/a.txt")).versions?.length, 3);
    assert.ok((await b.read("/gone.txt")).error, "the source's deleted file stays deleted");
    // A workspace that had files once keeps its own history: not a fork target with history.
    const once = b.withWorkspace(`${b.workspace}-once`);
    await once.write("/t.txt", "t\n");
    await once.delete("/t.txt");
    await rejects(() => b.fork(once.workspace, { history: true }), /has history of its own/);
    await rejects(() => b.fork(`${b.workspace}-bad`, { history: "yes" as never }), /history must be true or false/);
    assert.equal(await snapshot(b.withWorkspace(`${b.workspace}-bad`)), {});
  });

  t("fork refuses: into itself, into a workspace with files, a checkpoint it does not have, a bad name", async () => {
    const b = await target.fresh();
    await b.write("/x.txt", "x\n");
    const taken = `${b.workspace}-taken`;
    await b.withWorkspace(taken).write("/y.txt", "y\n");
    await rejects(() => b.fork(b.workspace), /cannot fork workspace '.*' into itself/);
    await rejects(() => b.fork(taken), /cannot fork into workspace '.*-taken': it has files/);
    await rejects(() => b.fork(`${b.workspace}-nope`, { at: 424242 }), /checkpoint 424242 does not exist/);
    await rejects(() => b.fork(""), /Invalid workspace name/);
    await rejects(() => b.fork("x", { at: 0 }), /checkpoint must be a positive integer/);
    assert.equal(await snapshot(b.withWorkspace(taken)), { "/y.txt": Buffer.from("y\n").toString("base64") });
    assert.equal(await snapshot(b.withWorkspace(`${b.workspace}-nope`)), {});
  });

  t(
    "directories: a rewind onto one made since is refused whole; forks with history carry them; a directory made and deleted is no history",
    async () => {
      const b = await target.fresh();
      await b.write("/p", "a file\n");
      await b.write("/q.txt", "q1\n");
      const before = await b.checkpoint();
      await b.delete("/p");
      await b.mkdir("/p");
      await b.write("/q.txt", "q2\n");
      await rejects(() => b.rewind(before.id), /^Error: cannot create file "\/p": it is a directory$/);
      assert.equal(await snapshot(b), { "/q.txt": Buffer.from("q2\n").toString("base64") }, "nothing changed");
      assert.equal((await b.stat("/p")).isDirectory, true);
      // a workspace that only ever had a directory, made and deleted, has no history of its own
      const into = b.withWorkspace(`${b.workspace}-dirs`);
      await into.mkdir("/tmp");
      await into.delete("/tmp");
      await b.mkdir("/empty/inner", { parents: true });
      const r = await b.fork(into.workspace, { history: true });
      assert.is(r.files, 1);
      assert.equal(
        ((await into.ls("/")).files ?? []).map((f) => f.path),
        ["/empty/", "/p/", "/q.txt"],
      );
      assert.equal(
        ((await into.ls("/empty")).files ?? []).map((f) => f.path),
        ["/empty/inner/"],
      );
    },
  );

  t.run();
}
