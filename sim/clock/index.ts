export * from "./time.ts";
export * from "./canonical.ts";
export * from "./rng.ts";
export * from "./trace.ts";
export * from "./clock.ts";
