// The real-time switch: whether live updates are applied, remembered across reloads
// (localStorage, for every tab opened later). app.js decides what pausing does.

import { $ } from "./dom.js";
import { renderRealtimeSwitch } from "./render.js";

const STORAGE_REALTIME = "billwire.realtime"; // "off" while paused; absent or "on" otherwise

let on = read();

function read() {
  try {
    return localStorage.getItem(STORAGE_REALTIME) !== "off";
  } catch {
    return true; // no storage: live, as by default
  }
}

export function realtimeOn() {
  return on;
}

/** Shows the switch and calls onChange(on) when the user flips it. */
export function initRealtimeSwitch(onChange) {
  renderRealtimeSwitch(on);
  $("live-toggle").addEventListener("click", () => {
    on = !on;
    try {
      localStorage.setItem(STORAGE_REALTIME, on ? "on" : "off");
    } catch { /* private mode: remembered for this page only */ }
    renderRealtimeSwitch(on);
    onChange(on);
  });
}
