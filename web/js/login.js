// The login view: the form (with the account field the API may ask for) and the demo logins.

import { $, setBusy } from "./dom.js";
import { api, ApiError, Cancelled } from "./api.js";
import { saveToken } from "./session.js";

export function showLogin({ notice = "", error = "" } = {}) {
  $("boot").hidden = true;
  $("app-view").hidden = true;
  $("login-view").hidden = false;
  document.title = "Sign in · Billwire";
  const n = $("login-notice");
  n.textContent = notice;
  n.hidden = !notice;
  const e = $("login-error");
  e.textContent = error;
  e.hidden = !error;
  setBusy($("login-submit"), false);
  $("login-password").value = "";
  const email = $("login-email");
  (email.value ? $("login-password") : email).focus();
}

/** Wires the form; onLoggedIn() runs once the tokens are saved. */
export function initLogin(onLoggedIn) {
  $("login-form").addEventListener("submit", (event) => onSubmit(event, onLoggedIn));
  if (["127.0.0.1", "localhost", "[::1]"].includes(location.hostname)) {
    $("demo-logins").hidden = false;
    for (const b of document.querySelectorAll("[data-demo-email]")) {
      b.addEventListener("click", () => {
        $("login-email").value = b.dataset.demoEmail;
        $("login-password").value = b.dataset.demoPassword;
        $("login-submit").focus();
      });
    }
  }
}

async function onSubmit(event, onLoggedIn) {
  event.preventDefault();
  const btn = $("login-submit");
  if (btn.disabled) return;
  const email = $("login-email");
  const password = $("login-password");
  const account = $("login-account");
  const accountShown = !$("login-account-field").hidden;
  const error = $("login-error");
  error.hidden = true;
  $("login-notice").hidden = true;
  for (const f of [email, password, account]) f.removeAttribute("aria-invalid");

  const missing = [];
  if (!email.value.trim()) missing.push(email);
  if (!password.value) missing.push(password);
  if (accountShown && !account.value.trim()) missing.push(account);
  if (missing.length) {
    for (const f of missing) f.setAttribute("aria-invalid", "true");
    error.textContent = accountShown && missing.includes(account) && missing.length === 1
      ? "Enter the account's slug." : "Enter your email and password.";
    error.hidden = false;
    missing[0].focus();
    return;
  }

  const body = { email: email.value.trim(), password: password.value };
  if (accountShown && account.value.trim()) body.account = account.value.trim();
  setBusy(btn, true);
  try {
    const tok = await api("/auth/login", { method: "POST", body, auth: false });
    if (!tok?.access_token) throw new ApiError(0, "bad_response", "The server sent no token.");
    saveToken(tok.access_token, tok.expires_in, tok.refresh_token);
    password.value = "";
    await onLoggedIn();
  } catch (e) {
    if (e instanceof Cancelled) return;
    if (e.status === 400 && e.code === "account_required") {
      $("login-account-field").hidden = false;
      $("login-notice").textContent = "This email belongs to several accounts. Which one do you want to sign in to?";
      $("login-notice").hidden = false;
      account.setAttribute("aria-invalid", "true");
      account.focus();
    } else {
      error.textContent = e.message;
      error.hidden = false;
      if (e.status === 401) password.select();
    }
  } finally {
    setBusy(btn, false);
  }
}
