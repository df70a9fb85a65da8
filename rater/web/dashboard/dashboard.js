// The ops dashboard: polls /rater/dashboard.json every 2 s and draws it. No framework.
"use strict";

const POLL_MS = 2000;

function figure(id, value, label, tone) {
  return el(
    "div",
    { class: "figure", id },
    el("div", { class: "value " + (tone || "") }, value === null || value === undefined ? "–" : value),
    el("div", { class: "label" }, label)
  );
}

function num(value) {
  return value === null || value === undefined ? "–" : Number(value).toLocaleString("en");
}

function row(cells, header) {
  return el("tr", {}, cells.map((c) => el(header ? "th" : "td", c.attrs || {}, c.text !== undefined ? c.text : c)));
}

function draw(data) {
  const w = data.worker;
  const t = data.topics;
  fill("where", `app ${w.app_id} · partitions ${w.partitions.join(", ") || "none"} · ${data.at}`);
  fill(
    "throughput",
    figure("cdrs-per-s", num(w.cdrs_per_s), `CDRs rated per second (last ${w.window_s} s)`),
    figure("cdrs-rated", num(w.cdrs_rated_total), "CDRs rated since start"),
    figure("lag-total", num(w.lag_total), "records waiting (lag)", w.lag_total > 1000 ? "warn" : "")
  );
  fill("readiness", w.ready ? "Ready: owns its partitions and consumes." : "Not ready: " + w.readiness);
  const b = w.batches;
  fill(
    "latency",
    figure("batch-p50", b.p50_ms_at_most === null ? "–" : "≤ " + b.p50_ms_at_most + " ms", "p50"),
    figure("batch-p99", b.p99_ms_at_most === null ? "–" : "≤ " + b.p99_ms_at_most + " ms", "p99"),
    figure("batch-mean", b.mean_ms === null ? "–" : b.mean_ms + " ms", "mean"),
    figure("batch-count", num(b.counted), b.over === "window" ? "batches in the last seconds" : "batches since start (none lately)")
  );
  fill(
    "lag",
    row(["topic", { text: "partition", attrs: { class: "num" } }, { text: "records", attrs: { class: "num" } }], true),
    w.lag.length
      ? w.lag.map((l) =>
          row([l.topic, { text: l.partition, attrs: { class: "num" } }, { text: num(l.records), attrs: { class: "num lag-records" } }])
        )
      : [el("tr", {}, el("td", { colspan: 3, class: "muted" }, "no owned partition fetched yet"))]
  );
  const up = t.topups;
  fill(
    "topups",
    figure("topups-requested", num(up.requested), "requested"),
    figure("topups-succeeded", num(up.succeeded), "succeeded", "good"),
    figure("topups-failed", num(up.failed), "failed", up.failed ? "bad" : ""),
    figure("topups-pending", num(up.pending), "awaiting an answer")
  );
  const reasons = Object.entries(up.failure_reasons);
  fill(
    "topup-reasons",
    reasons.length ? row(["why top-ups failed", { text: "count", attrs: { class: "num" } }], true) : null,
    reasons.map(([reason, count]) => row([reason, { text: num(count), attrs: { class: "num" } }]))
  );
  fill(
    "blocked",
    row(["tenant", { text: "balance when blocked", attrs: { class: "num" } }], true),
    t.blocked.length
      ? t.blocked.map((x) => row([x.tenant_id, { text: x.balance, attrs: { class: "num bad" } }]))
      : [el("tr", {}, el("td", { colspan: 2, class: "muted", id: "no-blocked" }, "none"))]
  );
  const amounts = Object.entries(t.overage.amounts);
  fill(
    "overage",
    figure("overage-records", num(t.overage.records), "overage records"),
    amounts.map(([currency, amount]) => figure("overage-" + currency, amount + " " + currency, "billed after usage"))
  );
  fill(
    "dlq",
    row([{ text: "count", attrs: { class: "num" } }, "code", "why it is there", "recent examples"], true),
    t.dlq.length
      ? t.dlq.map((d) =>
          el(
            "tr",
            { "data-code": d.code },
            el("td", { class: "num dlq-count" }, num(d.count)),
            el("td", {}, el("code", {}, d.code)),
            el("td", {}, d.meaning),
            el(
              "td",
              {},
              d.examples.map((x) =>
                el("div", { class: "example mono" }, `${x.dlq_id} key=${x.key}: ${x.message} · ${x.value}`)
              )
            )
          )
        )
      : [el("tr", {}, el("td", { colspan: 4, class: "muted" }, "nothing rejected"))]
  );
  fill(
    "notifications",
    row(["at", "tenant", "type", "to"], true),
    t.recent_notifications.length
      ? t.recent_notifications.map((n) => row([n.at, n.tenant_id, n.type, n.contact_email || "(no contact)"]))
      : [el("tr", {}, el("td", { colspan: 4, class: "muted" }, "none yet"))]
  );
  const reading = t.error
    ? "reading the output topics failed: " + t.error
    : t.caught_up
      ? ""
      : `reading the output topics… ${t.behind === null ? "" : num(t.behind) + " records to go"}`;
  return reading;
}

let timer = null;

async function poll() {
  clearTimeout(timer);
  try {
    const data = await api("GET", "/rater/dashboard.json");
    const note = draw(data);
    const banner = fill("error", note);
    banner.className = "banner " + (data.topics.error ? "error" : "info");
    document.body.dataset.caughtUp = data.topics.caught_up ? "yes" : "no";
  } catch (err) {
    const hint = err.status === 401 ? " Type the API token (RATER_API_TOKEN) at the top right." : "";
    const banner = fill("error", `Could not load the figures: ${err.status || ""} ${err.code}: ${err.message}.${hint}`);
    banner.className = "banner error";
  }
  timer = setTimeout(poll, POLL_MS);
}

fill("token-slot", tokenForm(poll));
poll();
