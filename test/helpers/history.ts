/** A BuildRecord for the history unit tests: a completed dockerfile.v0 build; tests override what they look at. */
import type { BuildRecord } from "../../src/history/record.js";

export function buildRecord(p: Partial<BuildRecord> & Pick<BuildRecord, "createdAt" | "steps">): BuildRecord {
  return {
    ref: "r",
    frontend: "dockerfile.v0",
    frontendAttrs: {},
    exporters: [],
    status: "completed",
    warnings: 0,
    pinned: false,
    exporterResponse: {},
    ...p,
  };
}
