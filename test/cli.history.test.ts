/**
 * The CLI's history commands (history, restore, checkpoint, checkpoints, diff, rewind, fork), human and
 * --json output, and their one-line errors, as a subprocess against the test database.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { cliRunner, json } from "./helpers/cli.js";
import { databaseUrl, TEST_SCHEMA, uniqueName } from "./helpers/db.js";

const workspace = uniqueName("cli-history");
const run = cliRunner(await databaseUrl(), TEST_SCHEMA, workspace);

test("checkpoint, change, diff, rewind --dry-run, rewind, undo, history and restore", async () => {
  assert.is((await run(["write", "/a.md", "one\n"])).code, 0);
  const taken = await run(["--json", "checkpoint", "--label", "start"]);
  assert.is(taken.code, 0, taken.stderr);
  const start = json(taken);
  assert.is(start.label, "start");

  await run(["write", "/a.md", "two\n"]);
  await run(["write", "/b.md", "new\n"]);

  const list = await run(["checkpoints"]);
  assert.match(list.stdout, new RegExp(`^\\s*${start.id}\\s+\\S+\\s+\\d+\\s+start$`, "m"));

  const diff = await run(["diff", String(start.id)]);
  assert.match(diff.stdout, /^updated\s+\/a\.md\s+v1 4 B\s+v2 4 B$/m);
  assert.match(diff.stdout, /^created\s+\/b\.md\s+-\s+v1 4 B$/m);
  const patch = await run(["diff", String(start.id), "--patch", "--path", "/a.md"]);
  assert.match(patch.stdout, /--- a\/a\.md\n\+\+\+ b\/a\.md\n@@ -1,1 \+1,1 @@\n-one\n\+two\n/);
  assert.not.match(patch.stdout, /b\.md/);

  const dry = await run(["rewind", String(start.id), "--dry-run"]);
  assert.match(dry.stdout, /\(dry run: nothing changed\)/);
  assert.is((await run(["read", "/a.md"])).stdout, "two\n");

  const rewound = json(await run(["--json", "rewind", String(start.id)]));
  assert.equal(
    rewound.changes.map((c: { path: string; op: string }) => `${c.op} ${c.path}`),
    ["updated /a.md", "deleted /b.md"],
  );
  assert.is((await run(["read", "/a.md"])).stdout, "one\n");
  assert.is((await run(["read", "/b.md"])).code, 1);

  const undo = await run(["rewind", String(rewound.undo)]);
  assert.match(undo.stdout, /undo with: rewind \d+/);
  assert.is((await run(["read", "/b.md"])).stdout, "new\n");

  const history = json(await run(["--json", "history", "/a.md"]));
  assert.equal(
    history.map((v: { version: number; op: string }) => `${v.version} ${v.op}`),
    ["1 create", "2 update", "3 update", "4 update"],
  );
  const restored = await run(["restore", "/a.md", "1"]);
  assert.is(restored.stdout.trim(), "restored /a.md to v1 as v5");
  assert.is((await run(["read", "/a.md"])).stdout, "one\n");

  const deleted = await run(["checkpoints", "--delete", String(start.id)]);
  assert.is(deleted.stdout.trim(), `deleted checkpoint ${start.id}`);
  assert.not.match((await run(["checkpoints"])).stdout, new RegExp(`^\\s*${start.id}\\s`, "m"));
});

test("fork now and at a checkpoint: the new workspace has the files, the source is unchanged", async () => {
  const fork = cliRunner(await databaseUrl(), TEST_SCHEMA, `${workspace}-f1`);
  await run(["write", "/f.md", "first\n"]);
  const taken = json(await run(["--json", "checkpoint"]));
  await run(["write", "/f.md", "second\n"]);
  const now = await run(["fork", `${workspace}-f1`]);
  assert.is(now.code, 0, now.stderr);
  assert.match(now.stdout.trim(), new RegExp(`^forked \\d+ files \\(.*\\) into workspace ${workspace}-f1$`));
  assert.is((await fork(["read", "/f.md"])).stdout, "second\n");
  const at = json(await run(["--json", "fork", `${workspace}-f2`, "--at", String(taken.id)]));
  assert.equal([at.workspace, at.at], [`${workspace}-f2`, taken.id]);
  const f2 = cliRunner(await databaseUrl(), TEST_SCHEMA, `${workspace}-f2`);
  assert.is((await f2(["read", "/f.md"])).stdout, "first\n");
  const withHistory = await run(["fork", `${workspace}-f3`, "--history"]);
  assert.is(withHistory.code, 0, withHistory.stderr);
  assert.match(
    withHistory.stdout.trim(),
    /^forked \d+ files \(.*\) with \d+ versions of history into workspace .*-f3$/,
  );
  const f3 = cliRunner(await databaseUrl(), TEST_SCHEMA, `${workspace}-f3`);
  assert.equal(
    json(await f3(["--json", "history", "/f.md"])).map((v: { version: number; op: string }) => `${v.version} ${v.op}`),
    ["1 create", "2 update"],
  );
  const again = await run(["fork", `${workspace}-f1`]);
  assert.is(again.code, 1);
  assert.match(again.stderr.trim(), /^error: cannot fork into workspace '.*-f1': it has files/);
  assert.is((await run(["read", "/f.md"])).stdout, "second\n");
});

test("bad input: one line on stderr, exit 1 (not found) or 2 (usage), nothing changed", async () => {
  await run(["write", "/c.md", "c\n"]);
  const cases: Array<[string[], number, RegExp]> = [
    [["rewind", "999999999"], 1, /^error: checkpoint 999999999 does not exist in workspace /],
    [["diff", "999999999"], 1, /^error: checkpoint 999999999 does not exist in workspace /],
    [["restore", "/c.md", "9"], 1, /^error: version 9 of '\/c\.md' is not kept$/],
    [["history", "/nothing.md"], 1, /^error: no history kept for '\/nothing\.md'$/],
    [["rewind", "0"], 2, /^error: <checkpoint> must be a positive integer \(got 0\)$/],
    [["restore", "/c.md", "x"], 2, /^error: <version> must be a positive integer \(got x\)$/],
    [["fork", "x", "--at", "0"], 2, /^error: --at must be a positive integer \(got 0\)$/],
    [["checkpoints", "--delete", "999999999"], 1, /^error: checkpoint 999999999 does not exist in workspace /],
  ];
  for (const [args, code, message] of cases) {
    const r = await run(args);
    assert.is(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr.trim(), message, r.stderr);
    assert.is(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  assert.equal(json(await run(["--json", "history", "/c.md"])).length, 1);
});

test.run();
