/**
 * LangGraph time travel that rewinds files too. With deepagents' StateBackend the files live in
 * graph state, so replaying from an earlier LangGraph checkpoint rewinds them; with a persistent
 * backend the files stay in the future. This closes the gap for a backend with checkpoints
 * (VersionedWorkspace): `withFileCheckpoints` wraps any LangGraph checkpointer so that every
 * graph checkpoint it saves records a file checkpoint of the workspace in its metadata, and
 * a run that starts from an earlier graph checkpoint with new input (time travel: invoke with a
 * past `checkpoint_id`), or updateState on the past, first puts the workspace back as it was
 * there. `rewindFiles` does the same by hand -- needed before replaying a past step's pending tool
 * calls with `invoke(null, pastConfig)` -- or with `dryRun` says what it would change, like the
 * Claude Agent SDK's rewindFiles.
 *
 * No runtime import of LangGraph: the saver is wrapped by a Proxy, so any saver (MemorySaver,
 * PostgresSaver, ...) of any version keeps all its methods.
 */
import type { BaseCheckpointSaver, CheckpointMetadata } from "@langchain/langgraph-checkpoint";
import type { RewindOptions, RewindResult, VersionedWorkspace } from "./core/history.js";
import { historyErrors } from "./protocol.js";

/** The metadata key of a graph checkpoint holding the id of the file checkpoint taken with it. */
export const FILES_CHECKPOINT_KEY = "deepagents_files_checkpoint";

/** The label of a file checkpoint taken with a graph checkpoint (its tag is the thread id). */
const LABEL_PREFIX = "langgraph ";

type Config = Parameters<BaseCheckpointSaver["getTuple"]>[0];

export interface FileCheckpointOptions {
  /**
   * Rewind the workspace when a run starts from a graph checkpoint that is not its thread's
   * latest (default true). The workspace should then belong to that one thread: a rewind puts
   * back every file of it.
   */
  rewindOnReplay?: boolean;
}

/**
 * The sources of the first checkpoint LangGraph saves when a run starts from new input, or when
 * updateState writes to a past checkpoint. With durability "sync" the run's first step ends by
 * waiting for that put, so the rewind it makes is done before any tool runs. Not "fork" (a resume
 * without input that reruns a past checkpoint's pending tasks): that put is not waited for before
 * the tasks run, and a rewind racing the replayed tools could undo their writes -- call
 * rewindFiles before such a replay. Steps ("loop") always follow the thread's latest checkpoint.
 */
const RUN_STARTS = new Set(["input", "update"]);

const threadOf = (config: Config): string | undefined => {
  const id = config.configurable?.thread_id;
  return typeof id === "string" ? id : undefined;
};

/**
 * The same saver, whose put() first takes a checkpoint of `backend`'s workspace (labelled with
 * the graph checkpoint's id, tagged with the thread) and records its id in the graph checkpoint's
 * metadata. Run the graph with `durability: "sync"` so that each graph checkpoint is saved before
 * the next step writes files (with "async" a file checkpoint may include the next step's writes).
 * One file checkpoint per graph step: each keeps the change log after it (pruneChanges) and the
 * versions it needs (pruneHistory). The saver's deleteThread(threadId) deletes those of the thread
 * too (they are tagged with the thread id); otherwise `deleteCheckpoint` (ids in the graph
 * checkpoints' metadata).
 */
export function withFileCheckpoints<S extends BaseCheckpointSaver>(
  saver: S,
  backend: VersionedWorkspace,
  options: FileCheckpointOptions = {},
): S {
  const rewindOnReplay = options.rewindOnReplay ?? true;
  const put: BaseCheckpointSaver["put"] = async (config, checkpoint, metadata, newVersions) => {
    if (rewindOnReplay && RUN_STARTS.has(String(metadata?.source))) await rewindIfReplay(saver, backend, config);
    const files = await backend.checkpoint({ label: `${LABEL_PREFIX}${checkpoint.id}`, tag: threadOf(config) });
    const withFiles = { ...metadata, [FILES_CHECKPOINT_KEY]: files.id } as CheckpointMetadata;
    try {
      return await saver.put(config, checkpoint, withFiles, newVersions);
    } catch (e) {
      // No graph checkpoint points to it: do not let it pin history and the change log.
      await backend.deleteCheckpoint(files.id).catch(() => {});
      throw e;
    }
  };
  // Deleting a thread deletes the file checkpoints taken with its graph checkpoints, which would
  // otherwise keep history and the change log for nothing.
  const deleteThread: BaseCheckpointSaver["deleteThread"] = async (threadId) => {
    await saver.deleteThread(threadId);
    for (const c of await backend.checkpoints())
      if (c.tag === threadId && c.label?.startsWith(LABEL_PREFIX)) await backend.deleteCheckpoint(c.id);
  };
  return new Proxy(saver, {
    get(target, property, receiver) {
      if (property === "put") return put;
      if (property === "deleteThread") return deleteThread;
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * When the first checkpoint of a run is saved (with durability "sync", before any tool runs): if the run's parent is an earlier graph checkpoint than the thread's latest, put the
 * workspace back as it was when that parent was saved. Subgraphs' namespaces are left alone:
 * the root graph's checkpoint covers the whole workspace.
 */
async function rewindIfReplay(saver: BaseCheckpointSaver, backend: VersionedWorkspace, config: Config): Promise<void> {
  const parent = config.configurable?.checkpoint_id;
  const namespace = config.configurable?.checkpoint_ns ?? "";
  if (typeof parent !== "string" || namespace !== "") return;
  const thread = { configurable: { thread_id: config.configurable?.thread_id, checkpoint_ns: "" } };
  const latest = await saver.getTuple(thread);
  if (!latest || latest.checkpoint.id === parent) return;
  const from = await saver.getTuple({ configurable: { ...thread.configurable, checkpoint_id: parent } });
  const id = (from?.metadata as Record<string, unknown> | undefined)?.[FILES_CHECKPOINT_KEY];
  // A parent saved without this wrapper has no file checkpoint: nothing to rewind to.
  if (typeof id !== "number") return;
  const { undo } = await backend.rewind(id);
  // The state the rewind replaced is the abandoned branch's latest graph checkpoint, which has a
  // file checkpoint of its own: the undo checkpoint would only pin history for nothing.
  if (undo !== null) await backend.deleteCheckpoint(undo);
}

/** The file checkpoint recorded with a graph checkpoint (config: thread_id and checkpoint_id). */
export async function fileCheckpointOf(saver: BaseCheckpointSaver, config: Config): Promise<number> {
  const tuple = await saver.getTuple(config);
  if (!tuple)
    throw new Error(
      historyErrors.noGraphCheckpoint(config.configurable?.thread_id, config.configurable?.checkpoint_id),
    );
  const id = (tuple.metadata as Record<string, unknown> | undefined)?.[FILES_CHECKPOINT_KEY];
  if (typeof id !== "number") throw new Error(historyErrors.noFileCheckpoint(tuple.checkpoint.id));
  return id;
}

/**
 * Puts the workspace back as it was when LangGraph saved the checkpoint `config` names (its
 * `configurable.checkpoint_id`, else the thread's latest). Call it before replaying from that
 * checkpoint; the rewind is ordinary, undoable changes (RewindResult.undo).
 */
export async function rewindFiles(
  saver: BaseCheckpointSaver,
  backend: VersionedWorkspace,
  config: Config,
  options: RewindOptions = {},
): Promise<RewindResult> {
  return backend.rewind(await fileCheckpointOf(saver, config), options);
}
