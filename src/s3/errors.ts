/**
 * How S3 (and S3-compatible servers) fail, told apart once: the SDK's errors carry an HTTP status,
 * a name and how many attempts it made; the backend's decisions (settle a write, retry a delete,
 * word a storage failure) read them through these predicates only.
 */
import { errors } from "../protocol.js";

export const httpStatus = (e: unknown): number | undefined =>
  (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;

export const isNotFound = (e: unknown): boolean =>
  httpStatus(e) === 404 || ["NoSuchKey", "NotFound"].includes((e as Error)?.name);

/** 412, or AWS's 409 ConditionalRequestConflict for a condition racing another write. */
export const isPreconditionFailed = (e: unknown): boolean =>
  httpStatus(e) === 412 || httpStatus(e) === 409 || (e as Error)?.name === "PreconditionFailed";

/** Thrown by the SDK (a service answer, or a network failure after its retries): its retry step
 *  gives every error it lets through a `$metadata`. The backend's own errors have none. */
export const isSdkError = (e: unknown): boolean => typeof (e as { $metadata?: unknown } | null)?.$metadata === "object";

/** 5xx after the SDK's own retries. */
export const isServerError = (e: unknown): boolean => (httpStatus(e) ?? 0) >= 500;

/** The SDK sent the request more than once: an earlier attempt may have landed. */
export const wasRetried = (e: unknown): boolean =>
  ((e as { $metadata?: { attempts?: number } })?.$metadata?.attempts ?? 1) > 1;

/** A PUT whose answer was lost, and neither the object nor its lineage can tell whether it landed. */
export class OutcomeUnknownError extends Error {
  constructor(readonly path: string) {
    super(`the outcome of the write of '${path}' is unknown`);
  }
}

/** Why a bucket cannot be used, from HeadBucket's failure. */
export function bucketProblem(e: unknown): string {
  const code = httpStatus(e);
  if (code === 404) return "it does not exist";
  if (code === 403) return "access denied";
  return (e as Error).message || (e as Error).name;
}

/** A failure that is not bad input, worded for the agent. */
export function s3Failure(operation: string, e: unknown): string {
  if (e instanceof OutcomeUnknownError) return errors.outcomeUnknown(operation, e.path);
  const err = e as Error;
  const detail =
    err?.message && err.message !== "UnknownError"
      ? err.message
      : `${err?.name ?? "error"} (HTTP ${httpStatus(e) ?? "?"})`;
  return errors.storage(operation, detail);
}
