// Errors the CLI turns into exit codes: a UsageError exits 2 with its one-line message, a Failure
// exits 1. Nothing reaches the user as a stack trace unless HVSIM_DEBUG is set.

export class UsageError extends Error {
  override name = "UsageError";
}

export class Failure extends Error {
  override name = "Failure";
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}
