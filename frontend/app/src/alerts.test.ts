import { describe, expect, it } from "vitest";
import type { Alert } from "./api";
import { alertBadge, alertLink, alertTitle, duration, noticeState, splitAlerts } from "./alerts";
import { href, parseRoute } from "./logic";

const base: Alert = {
  id: 1,
  subject: "connection:3",
  connection_id: 3,
  team_id: 1,
  name: "escalation",
  kind: "failures",
  state: "open",
  detail: "7 events failed in the last 15m0s",
  opened_at: "2026-12-02T10:00:00Z",
  attempts: 0,
};
const at = (iso: string) => Date.parse(iso);

describe("alerts", () => {
  it("titles and links point at the failing thing", () => {
    expect(alertTitle(base)).toBe("Connection “escalation”: events failing");
    expect(alertLink(base)).toBe("#/connections/3/queue?status=failed");
    expect(alertLink({ ...base, kind: "queue_age" })).toBe("#/connections/3/queue?status=queued");
    expect(alertTitle({ ...base, kind: "quarantined" })).toBe("Connection “escalation”: quarantined (scripts keep hitting a limit)");
    expect(alertLink({ ...base, kind: "quarantined" })).toBe("#/connections/3/queue?status=failed");
    const sys: Alert = { ...base, subject: "system:5", connection_id: undefined, system_id: 5, name: "redmine", kind: "unreachable" };
    expect(alertTitle(sys)).toBe("System “redmine”: system unreachable");
    expect(alertLink(sys)).toBe("#/systems/5");
  });

  it("splits open (longest open first) from resolved (latest first)", () => {
    const list: Alert[] = [
      { ...base, id: 1, opened_at: "2026-12-02T10:05:00Z" },
      { ...base, id: 2, opened_at: "2026-12-02T09:00:00Z" },
      { ...base, id: 3, state: "resolved", resolved_at: "2026-12-02T08:00:00Z" },
      { ...base, id: 4, state: "resolved", resolved_at: "2026-12-02T09:30:00Z" },
    ];
    const { open, resolved } = splitAlerts(list);
    expect(open.map((a) => a.id)).toEqual([2, 1]);
    expect(resolved.map((a) => a.id)).toEqual([4, 3]);
  });

  it("badges the open count", () => {
    expect(alertBadge(0)).toBe("");
    expect(alertBadge(3)).toBe("3");
    expect(alertBadge(12)).toBe("9+");
  });

  it("says how long an alert lasts", () => {
    expect(duration(base, at("2026-12-02T10:00:42Z"))).toBe("42s");
    expect(duration(base, at("2026-12-02T10:12:00Z"))).toBe("12 min");
    expect(duration({ ...base, resolved_at: "2026-12-02T12:30:00Z" }, at("2026-12-05T00:00:00Z"))).toBe("2 h 30 min");
  });

  it("tells what became of the webhook notice", () => {
    const now = at("2026-12-02T10:10:00Z");
    expect(noticeState(base, now)).toEqual({ text: "no notice (no webhook configured)", bad: false });
    expect(noticeState({ ...base, pending: "open" }, now)).toEqual({ text: "notice: sending", bad: false });
    expect(noticeState({ ...base, pending: "open", attempts: 2, last_error: "receiver answered 500" }, now).text).toBe(
      "notice: retrying (2 failed: receiver answered 500)",
    );
    expect(noticeState({ ...base, pending: "resolved", attempts: 1, last_error: "x" }, now).text).toMatch(/^recovery notice: retrying/);
    expect(noticeState({ ...base, last_notified_at: "2026-12-02T10:09:00Z" }, now)).toEqual({ text: "notified 1 min ago", bad: false });
    expect(noticeState({ ...base, last_error: "receiver answered 503" }, now)).toEqual({ text: "notice given up: receiver answered 503", bad: true });
  });

  it("has a route", () => {
    expect(parseRoute("#/alerts")).toEqual({ view: "alerts" });
    expect(href(parseRoute("#/alerts"))).toBe("#/alerts");
  });
});
