// The tenant's credits page (the admin center of the seeds): every figure from
// GET /tenants/{id}/balance and every action a call of the operator API (SPEC 11).
"use strict";

const TEXT = {
  en: {
    title: "Communications credits", open: "Open", dashboard: "ops dashboard",
    balance: "Balance", add_credits: "Add credits", amount: "Amount", buy: "Add credits",
    purchase_note: "A purchase is a new lot that expires 12 months later; it first pays any amount below zero.",
    lots: "Credit lots", pools: "Minute pools this month", auto_recharge: "Auto-recharge",
    enabled: "On", trigger: "When the balance falls to", recharge_amount: "Add", save: "Save",
    billing_model: "Billing model", model: "Model", prepaid: "Prepaid credits",
    nce: "Post-usage billing (NCE)", switch: "Switch",
    model_warning: "Turn auto-recharge off before post-usage billing can start: while it is on, credits keep being recharged and no usage is billed afterwards.",
    contact: "Notices by e-mail", email: "E-mail", mail_language: "Language",
    recent_usage: "Recent usage",
    lot: "Lot", lot_amount: "Bought", remaining: "Left", purchased: "Bought on", expires: "Expires",
    expiring: (amount, n) => `${amount} expire within 30 days (${n} lot${n === 1 ? "" : "s"}).`,
    nothing_expiring: "Nothing expires within 30 days.",
    no_lots: "No credits left: every lot is spent or expired.",
    pool_use: (used, total) => `${used} of ${total} minutes used`,
    no_pool: "no minutes allocated",
    domestic: "Domestic", international: "International",
    meaning_prepaid_ok: "Prepaid: calls that are not covered by a minute pool are paid from these credits.",
    meaning_prepaid_negative: (owed) => `Below zero: calls worth ${owed} were charged beyond the credits. Toll-free dial-in and international calling are blocked until credits bring the balance back to zero or above.`,
    meaning_nce_active: "Post-usage billing (NCE): remaining credits are spent first; calls beyond them are invoiced after use (overage). The balance never goes below zero.",
    meaning_nce_waiting: "Post-usage billing (NCE) is chosen but has not started, because auto-recharge is still on: credits keep being recharged. Turn auto-recharge off to start post-usage billing.",
    blocked_now: "Toll-free dial-in and international calling are blocked now.",
    pending: (id) => `A top-up was requested (${id}) and awaits the payment side's answer.`,
    backoff: (until) => `The last automatic top-up failed; no new one is asked before ${until} unless the settings are saved again.`,
    ar_on: (trigger, amount) => `On: when the balance falls to ${trigger}, ${amount} are added.`,
    ar_off: "Off.",
    at: "When", kind: "What", change: "Change", after: "Balance after",
    kinds: { usage: "calls", purchase: "purchase", topup: "auto-recharge", expiry: "expired", overage_transfer: "moved to invoice" },
    no_usage: "No recent entries found for this tenant.",
    sent: "Sent. The rater applies it in a moment; the page refreshes until it shows.",
    applied: "Done: the change shows below.",
    still_waiting: "Sent, but the rater has not applied it yet: the page keeps refreshing.",
    open_tenant: "Type a tenant id and press Open.",
    error: (status, code, message) => `Failed (${status} ${code}): ${message}`,
  },
  de: {
    title: "Kommunikationsguthaben", open: "Öffnen", dashboard: "Betriebsübersicht",
    balance: "Guthaben", add_credits: "Guthaben aufladen", amount: "Betrag", buy: "Guthaben aufladen",
    purchase_note: "Ein Kauf ist ein neues Guthabenpaket, das nach 12 Monaten verfällt; es gleicht zuerst einen Betrag unter null aus.",
    lots: "Guthabenpakete", pools: "Minutenkontingente diesen Monat", auto_recharge: "Automatische Aufladung",
    enabled: "Ein", trigger: "Wenn das Guthaben sinkt auf", recharge_amount: "Aufladen um", save: "Speichern",
    billing_model: "Abrechnungsmodell", model: "Modell", prepaid: "Vorausbezahltes Guthaben",
    nce: "Nachträgliche Abrechnung (NCE)", switch: "Umstellen",
    model_warning: "Schalten Sie die automatische Aufladung aus, bevor die nachträgliche Abrechnung beginnen kann: solange sie an ist, wird weiter Guthaben aufgeladen und nichts nachträglich abgerechnet.",
    contact: "Hinweise per E-Mail", email: "E-Mail", mail_language: "Sprache",
    recent_usage: "Letzte Buchungen",
    lot: "Paket", lot_amount: "Gekauft", remaining: "Rest", purchased: "Gekauft am", expires: "Verfällt",
    expiring: (amount, n) => `${amount} verfallen innerhalb von 30 Tagen (${n} Paket${n === 1 ? "" : "e"}).`,
    nothing_expiring: "Innerhalb von 30 Tagen verfällt nichts.",
    no_lots: "Kein Guthaben übrig: alle Pakete sind verbraucht oder verfallen.",
    pool_use: (used, total) => `${used} von ${total} Minuten verbraucht`,
    no_pool: "keine Minuten zugeteilt",
    domestic: "Inland", international: "International",
    meaning_prepaid_ok: "Vorausbezahlt: Anrufe, die kein Minutenkontingent deckt, werden aus diesem Guthaben bezahlt.",
    meaning_prepaid_negative: (owed) => `Unter null: Anrufe für ${owed} wurden über das Guthaben hinaus berechnet. Gebührenfreie Einwahl und internationale Anrufe sind gesperrt, bis neues Guthaben den Stand wieder auf null oder darüber bringt.`,
    meaning_nce_active: "Nachträgliche Abrechnung (NCE): vorhandenes Guthaben wird zuerst verbraucht; was darüber hinausgeht, wird nach der Nutzung in Rechnung gestellt. Das Guthaben fällt nie unter null.",
    meaning_nce_waiting: "Nachträgliche Abrechnung (NCE) ist gewählt, hat aber nicht begonnen, weil die automatische Aufladung noch an ist: es wird weiter aufgeladen. Schalten Sie sie aus, damit die nachträgliche Abrechnung beginnt.",
    blocked_now: "Gebührenfreie Einwahl und internationale Anrufe sind derzeit gesperrt.",
    pending: (id) => `Eine Aufladung wurde angefordert (${id}) und wartet auf die Antwort des Zahlungsdienstes.`,
    backoff: (until) => `Die letzte automatische Aufladung ist fehlgeschlagen; vor ${until} wird keine neue angefordert, außer die Einstellungen werden erneut gespeichert.`,
    ar_on: (trigger, amount) => `Ein: sinkt das Guthaben auf ${trigger}, werden ${amount} aufgeladen.`,
    ar_off: "Aus.",
    at: "Wann", kind: "Was", change: "Änderung", after: "Guthaben danach",
    kinds: { usage: "Anrufe", purchase: "Kauf", topup: "automatische Aufladung", expiry: "verfallen", overage_transfer: "auf Rechnung übertragen" },
    no_usage: "Keine aktuellen Buchungen für diesen Mandanten gefunden.",
    sent: "Gesendet. Der Rater übernimmt es gleich; die Seite aktualisiert sich, bis es zu sehen ist.",
    applied: "Erledigt: die Änderung ist unten zu sehen.",
    still_waiting: "Gesendet, aber noch nicht übernommen: die Seite aktualisiert sich weiter.",
    open_tenant: "Mandanten-ID eingeben und Öffnen drücken.",
    error: (status, code, message) => `Fehlgeschlagen (${status} ${code}): ${message}`,
  },
};

const params = new URLSearchParams(location.search);
let lang = params.get("lang") || (navigator.language || "en").slice(0, 2);
if (!TEXT[lang]) lang = "en";
let tenant = params.get("tenant") || "";
let current = null; // the last balance shown
let refreshTimer = null;

function t(key, ...args) {
  const value = TEXT[lang][key];
  return typeof value === "function" ? value(...args) : value;
}

function money(value, currency) {
  const n = Number(value);
  const shown = n.toLocaleString(lang === "de" ? "de-DE" : "en-GB", {
    minimumFractionDigits: 2,
    maximumFractionDigits: 6,
  });
  return currency ? `${shown} ${currency}` : shown;
}

function day(time) {
  return new Date(time).toLocaleDateString(lang === "de" ? "de-DE" : "en-GB", {
    year: "numeric", month: "short", day: "numeric", timeZone: "UTC",
  });
}

function moment(time) {
  return new Date(time).toLocaleString(lang === "de" ? "de-DE" : "en-GB", { timeZone: "UTC" }) + " UTC";
}

function translate() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  document.getElementById("language").value = lang;
}

function showError(err) {
  fill("error", t("error", err.status || "", err.code, err.message));
}

function clearMessages() {
  fill("error");
  fill("info");
}

function meaning(b) {
  const parts = [];
  if (b.billing_model === "nce") {
    parts.push(b.post_usage_active ? t("meaning_nce_active") : t("meaning_nce_waiting"));
  } else if (Number(b.balance) < 0) {
    parts.push(t("meaning_prepaid_negative", money(-Number(b.balance), b.currency)));
  } else {
    parts.push(t("meaning_prepaid_ok"));
  }
  if (b.blocked && !(Number(b.balance) < 0 && b.billing_model !== "nce")) parts.push(t("blocked_now"));
  return parts.join(" ");
}

function draw(b) {
  current = b;
  const balance = fill("balance", money(b.balance, b.currency));
  balance.className = "big " + (Number(b.balance) < 0 ? "bad" : "");
  balance.dataset.value = b.balance;
  fill("meaning", meaning(b));
  const ar = b.auto_recharge;
  const notes = [];
  if (ar.pending_request_id) notes.push(t("pending", ar.pending_request_id));
  if (ar.backoff_until) notes.push(t("backoff", moment(ar.backoff_until)));
  fill("pending", notes.join(" "));
  // Lots, and what of them expires within 30 days of now (or of the tenant clock, if later).
  const now = Math.max(Date.now(), Date.parse(b.clock || 0) || 0);
  const soon = b.lots.filter((l) => Date.parse(l.expires_at) - now <= 30 * 86400e3 && Number(l.remaining) > 0);
  const soonTotal = soon.reduce((sum, l) => sum + Number(l.remaining), 0);
  fill("expiring", soon.length ? t("expiring", money(soonTotal, b.currency), soon.length) : t("nothing_expiring"))
    .className = "explain " + (soon.length ? "warn" : "");
  fill(
    "lots",
    el("tr", {}, [t("lot"), t("lot_amount"), t("remaining"), t("purchased"), t("expires")].map((h, i) =>
      el("th", { class: i === 1 || i === 2 ? "num" : "" }, h))),
    b.lots.length
      ? b.lots.map((l) =>
          el("tr", { class: soon.includes(l) ? "warn" : "" },
            el("td", { class: "mono" }, l.lot_id),
            el("td", { class: "num" }, money(l.amount)),
            el("td", { class: "num" }, money(l.remaining)),
            el("td", {}, day(l.purchased_at)),
            el("td", {}, day(l.expires_at))))
      : [el("tr", {}, el("td", { colspan: 5, class: "muted" }, t("no_lots")))]
  );
  fill(
    "pools",
    Object.entries(b.pools).map(([pool, p]) => {
      const used = Math.round(p.used_s / 6) / 10;
      const share = p.minutes ? Math.min(100, (100 * p.used_s) / (p.minutes * 60)) : 0;
      return el("div", { class: "pool" },
        el("div", {}, el("strong", {}, t(pool)), " · ",
          p.minutes ? t("pool_use", used.toLocaleString(lang), p.minutes.toLocaleString(lang)) : t("no_pool")),
        el("div", { class: "bar" }, el("div", { style: `width:${share}%` })));
    })
  );
  // Forms show the state, unless the user is editing them.
  if (!document.getElementById("recharge-form").contains(document.activeElement)) {
    document.getElementById("ar-enabled").checked = ar.enabled;
    document.getElementById("ar-trigger").value = Number(ar.trigger_balance);
    document.getElementById("ar-amount").value = Number(ar.recharge_amount) || "";
  }
  fill("ar-state", ar.enabled ? t("ar_on", money(ar.trigger_balance, b.currency), money(ar.recharge_amount, b.currency)) : t("ar_off"));
  if (!document.getElementById("model-form").contains(document.activeElement)) {
    document.getElementById("model").value = b.billing_model;
  }
  if (!document.getElementById("contact-form").contains(document.activeElement)) {
    document.getElementById("contact-email").value = b.contact_email || "";
    document.getElementById("contact-language").value = b.language || "en";
  }
  updateWarning();
}

function drawUsage(body) {
  fill(
    "usage",
    el("tr", {}, [t("at"), t("kind"), t("change"), t("after")].map((h, i) => el("th", { class: i >= 2 ? "num" : "" }, h))),
    body.entries.length
      ? body.entries.map((e) =>
          el("tr", {},
            el("td", {}, moment(e.at)),
            el("td", {}, (TEXT[lang].kinds[e.kind] || e.kind)),
            el("td", { class: "num " + (Number(e.amount) < 0 ? "bad" : "good") }, money(e.amount)),
            el("td", { class: "num" }, money(e.balance_after))))
      : [el("tr", {}, el("td", { colspan: 4, class: "muted" }, t("no_usage")))]
  );
}

function updateWarning() {
  const ar = document.getElementById("ar-enabled").checked;
  const nce = document.getElementById("model").value === "nce";
  document.getElementById("model-warning").style.display = nce || ar ? "block" : "none";
}

async function load() {
  clearTimeout(refreshTimer);
  if (!tenant) {
    fill("info", t("open_tenant"));
    return null;
  }
  const path = `/tenants/${encodeURIComponent(tenant)}`;
  try {
    const b = await api("GET", path + "/balance");
    fill("error");
    draw(b);
    try {
      drawUsage(await api("GET", `/rater${path}/ledger`));
    } catch (err) {
      showError(err);
    }
    return b;
  } catch (err) {
    showError(err);
    return null;
  } finally {
    refreshTimer = setTimeout(load, 5000);
  }
}

// An action: call the API; on 202 refresh until the balance shows a change (or 30 s).
async function act(method, command, body) {
  clearMessages();
  const before = JSON.stringify(current);
  try {
    await api(method, `/tenants/${encodeURIComponent(tenant)}/${command}`, body);
  } catch (err) {
    showError(err);
    return;
  }
  fill("info", t("sent"));
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 700));
    const b = await load();
    if (b && JSON.stringify(b) !== before) {
      fill("info", t("applied"));
      return;
    }
  }
  fill("info", t("still_waiting"));
}

document.getElementById("tenant-form").addEventListener("submit", (event) => {
  event.preventDefault();
  tenant = document.getElementById("tenant").value.trim();
  history.replaceState(null, "", `?tenant=${encodeURIComponent(tenant)}&lang=${lang}`);
  clearMessages();
  load();
});
document.getElementById("language").addEventListener("change", (event) => {
  lang = event.target.value;
  history.replaceState(null, "", `?tenant=${encodeURIComponent(tenant)}&lang=${lang}`);
  translate();
  if (current) draw(current);
  load();
});
document.getElementById("purchase-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act("POST", "purchases", { amount: document.getElementById("purchase-amount").value.trim() });
});
document.getElementById("recharge-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const enabled = document.getElementById("ar-enabled").checked;
  const body = { enabled, trigger_balance: document.getElementById("ar-trigger").value.trim() || "0" };
  const amount = document.getElementById("ar-amount").value.trim();
  if (amount || enabled) body.recharge_amount = amount;
  act("PUT", "auto-recharge", body);
});
document.getElementById("model-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act("PUT", "billing-model", { billing_model: document.getElementById("model").value });
});
document.getElementById("contact-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act("PUT", "contact", {
    contact_email: document.getElementById("contact-email").value.trim(),
    language: document.getElementById("contact-language").value,
  });
});
document.getElementById("ar-enabled").addEventListener("change", updateWarning);
document.getElementById("model").addEventListener("change", updateWarning);

fill("token-slot", tokenForm(load));
document.getElementById("tenant").value = tenant;
translate();
load();
