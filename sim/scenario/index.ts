export * from "./registry.ts";
export * from "./values.ts";
export * from "./loader.ts";
export * from "./runner.ts";
export * from "./machines.ts";
export * from "./format.ts";
