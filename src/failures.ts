/**
 * Input errors every backend turns into the protocol's `{ error }` result the same way; anything
 * else is the backend's own (a storage failure).
 */
import { errors, InputError } from "./protocol.js";
import { PathError } from "./paths.js";
import { GlobError } from "./glob.js";

export function inputFailure(e: unknown): string | undefined {
  if (e instanceof PathError) return errors.invalidPath(e.input, e.reason);
  if (e instanceof GlobError) return errors.invalidGlob(e.pattern, e.reason);
  if (e instanceof InputError) return e.message;
  return undefined;
}
