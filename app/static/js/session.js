// Who the dashboard's key is (GET /api/v1/whoami), so that actions a key would be refused
// (a viewer acknowledging) are not offered. Until it is known, everything is offered and
// the service's answer stays the judge.

import { api } from "./api.js";

let grants = null; // null: not known (not asked yet, or the service could not say)
let asked = 0; // the latest question: an older answer (a key changed since) is ignored

/** Ask the service who the current key is; resolves either way. */
export async function loadSession() {
  const mine = ++asked;
  let known = null;
  try {
    known = new Set((await api("api/v1/whoami")).grants);
  } catch {
    known = null;
  }
  if (mine === asked) grants = known;
}

/** Whether the current key may act with `role` (true while that is not known). */
export function may(role) {
  return grants === null || grants.has(role);
}
