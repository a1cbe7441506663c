// The dashboard's lists: recent alerts and the model lineage, rebuilt from each snapshot.
//
// Every value goes in as text (textContent), never as markup: alert messages and model causes
// are whatever the loop wrote, and the page must not run them.

import { clock } from "./chart.js";

export function renderAlerts(list, alerts) {
  if (!alerts.length) return list.replaceChildren(element("li", "empty", "No alerts yet."));
  list.replaceChildren(...alerts.map((alert) => {
    const item = element("li", `alert severity-${alert.severity}`);
    const head = element("div", "alert-head");
    head.append(
      element("time", "", when(alert.at_ms)),
      element("span", "badge", alert.severity),
      element("strong", "", alert.kind.replaceAll("_", " ")),
      element("span", "subject", alert.subject),
    );
    const message = element("p", "message", alert.message);
    message.title = alert.message;
    item.append(head, message);
    return item;
  }));
}

export function renderLineage(table, lineage, champion) {
  if (!lineage.length) {
    const none = element("td", "empty", "No model yet.");
    none.colSpan = 5;
    const row = element("tr");
    row.append(none);
    return table.replaceChildren(row);
  }
  table.replaceChildren(...lineage.map((v) => {
    const row = element("tr", v.version === champion ? "current" : "");
    const cause = element("td");
    cause.append(element("div", "cause", v.cause || v.reason));
    cause.title = [v.cause, v.reason, v.spec].filter(Boolean).join("\n");
    const version = element("th", "", `v${v.version}`);
    version.scope = "row";
    const status = element("td");
    status.append(element("span", `status status-${v.status}`, v.status.replace("_", " ")));
    const parent = element("td", "", v.parent === null ? "—" : `v${v.parent}`);
    row.append(version, parent, status, cause, element("td", "", when(v.created_ms)));
    return row;
  }));
}

export function element(tag, className = "", text = null) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== null) node.textContent = text;
  return node;
}

// The time of day for today's moments, the date and time for older ones.
export function when(ms) {
  const moment = new Date(ms);
  if (moment.toDateString() === new Date().toDateString()) return clock(ms);
  const day = moment.toLocaleDateString([], { month: "short", day: "numeric" });
  const time = moment.toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit" });
  return `${day} ${time}`;
}
