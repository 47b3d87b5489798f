/**
 * The conversation and the tool calls as list items, updated in place so a screen reader hears
 * each new turn once (the transcript list is `aria-live`).
 */
import type { ToolView, TurnView } from "./conversation";

export function renderTranscript(list: HTMLOListElement, all: readonly TurnView[]): void {
  const turns = all.filter((t) => t.text);
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  list.querySelector(".empty")?.remove();
  const items = list.querySelectorAll<HTMLLIElement>("li.turn");
  turns.forEach((turn, i) => {
    const li = items[i] ?? list.appendChild(document.createElement("li"));
    li.className = `turn ${turn.role}${turn.interrupted ? " interrupted" : ""}`;
    if (li.textContent !== turn.text) li.textContent = turn.text;
  });
  if (nearBottom) list.scrollTop = list.scrollHeight;
}

export function renderTools(list: HTMLOListElement, tools: readonly ToolView[]): void {
  list.querySelector(".empty")?.remove();
  const items = list.querySelectorAll<HTMLLIElement>("li.tool");
  tools.forEach((tool, i) => {
    let li = items[i];
    if (!li) {
      li = list.appendChild(document.createElement("li"));
      li.className = "tool";
      for (const part of ["name", "status", "detail"]) {
        li.appendChild(document.createElement("span")).className = part;
      }
    }
    li.dataset.status = tool.status;
    li.dataset.background = String(tool.background);
    if (tool.id) li.dataset.id = tool.id;
    const [name, status, detail] = Array.from(li.children) as HTMLSpanElement[];
    name.textContent = tool.name;
    const running = tool.status === "started" || tool.status === "running";
    const shown = tool.background && running ? "running in the background" : tool.status;
    status.textContent =
      tool.durationMs === null ? shown : `${shown} · ${formatMs(tool.durationMs)}`;
    detail.textContent = tool.detail;
    detail.hidden = !tool.detail;
  });
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}
