import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["specs/**/*.spec.ts", "properties/**/*.prop.ts"],
    testTimeout: 60_000,
    hookTimeout: 600_000,
    pool: "forks",
    coverage: {
      provider: "v8",
      include: ["sim/**/*.ts"],
      exclude: ["sim/cli/bin.mjs"],
      reporter: ["text-summary", "json-summary"],
      reportsDirectory: "coverage",
      thresholds: { lines: 85 },
    },
  },
});
