// Shared by the dashboard and the credits page: the API token and calls that show their errors.
"use strict";

const TOKEN_KEY = "rater-api-token";

function apiToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function setApiToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// One call of the operator API. Any answer but 2xx becomes an ApiError carrying the
// API's own code and message (SPEC 11 error shape), so a page can show it.
async function api(method, path, body) {
  const headers = {};
  if (apiToken()) headers["Authorization"] = "Bearer " + apiToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "no_answer", "the worker did not answer: " + err.message);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const detail = (data && data.error) || {};
    throw new ApiError(
      response.status,
      detail.code || "http_" + response.status,
      detail.message || text || response.statusText
    );
  }
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fill(id, ...children) {
  const node = document.getElementById(id);
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  return node;
}

// A token form in the page header: shown always, so a 401 can be answered in place.
function tokenForm(onSaved) {
  const input = el("input", {
    type: "password",
    id: "token",
    placeholder: "API token",
    autocomplete: "off",
  });
  input.value = apiToken();
  return el(
    "form",
    {
      class: "token",
      onsubmit: (event) => {
        event.preventDefault();
        setApiToken(input.value.trim());
        onSaved();
      },
    },
    input,
    el("button", { type: "submit", id: "token-save" }, "Use token")
  );
}
