/**
 * PL/Proxy passes a partition's error on with its SQLSTATE, but words it its own way: the message
 * as "<proxy function>(<argument count>): [<database>] REMOTE ERROR: <message>", the detail and
 * hint as "Remote detail: ..." and "Remote hint: ...". The backend reads our errors' messages and
 * details (a path, a checkpoint id): this gives them back as the partition said them.
 */
const REMOTE_MESSAGE = /^[\w.]+__(?:px|all)\(\d+\): \[[^\]]*\] REMOTE [A-Z]+: /;

export function unwrapRemoteError(e: unknown): unknown {
  const err = e as { message?: unknown; detail?: unknown; hint?: unknown } | null;
  if (typeof err?.message !== "string" || !REMOTE_MESSAGE.test(err.message)) return e;
  err.message = err.message.replace(REMOTE_MESSAGE, "");
  if (typeof err.detail === "string") err.detail = err.detail.replace(/^Remote detail: /, "");
  if (typeof err.hint === "string") err.hint = err.hint.replace(/^Remote hint: /, "");
  return e;
}
