// Errors the CLI turns into exit codes: a UsageError exits 2 with its one-line message, a Failure
// exits 1. Nothing reaches the user as a stack trace unless HVSIM_DEBUG is set.

export class UsageError extends Error {
  override name = "UsageError";
  /** showHint: whether the "(run with --help for usage)" line follows (not for a bad output path). */
  constructor(message: string, readonly showHint = true) {
    super(message);
  }
}

export class Failure extends Error {
  override name = "Failure";
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}
