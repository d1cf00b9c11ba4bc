import { describe, expect, it } from "vitest";
import { parseSettings, setSetting } from "./views/system-settings";

describe("system settings form state", () => {
  it("sets, replaces and removes one key of the settings JSON", () => {
    let s = setSetting("{}", "url", "http://x");
    expect(JSON.parse(s)).toEqual({ url: "http://x" });
    s = setSetting(s, "timeout_ms", 500);
    expect(JSON.parse(s)).toEqual({ url: "http://x", timeout_ms: 500 });
    s = setSetting(s, "url", "");
    expect(JSON.parse(s)).toEqual({ timeout_ms: 500 });
  });
  it("reads only a JSON object", () => {
    expect(parseSettings('{"a":1}')).toEqual({ a: 1 });
    expect(parseSettings("[1]")).toBeUndefined();
    expect(parseSettings("{")).toBeUndefined();
    expect(parseSettings("null")).toBeUndefined();
  });
});
