// akener dashboard: small enhancements over pages that already work without JavaScript.
// Dialogs for create and delete, the Status toggle without a reload, and the Copy button.
// Every request still goes to the same form endpoints, with the form's CSRF token.
(function () {
  "use strict";

  function announce(text, kind) {
    var box = document.getElementById("flash");
    if (!box) return;
    box.textContent = "";
    var p = document.createElement("p");
    p.className = "flash flash-" + (kind || "success");
    p.textContent = text;
    box.appendChild(p);
  }

  async function post(form) {
    var response = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    var data = null;
    try { data = await response.json(); } catch (ignored) { data = null; }
    if (response.status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
    }
    if (!response.ok) {
      var error = new Error((data && data.error && data.error.message) || "The request failed (" + response.status + ").");
      error.field = data && data.error ? data.error.field : null;
      throw error;
    }
    return data;
  }

  function openDialog(dialog, focusSelector) {
    dialog.showModal();
    var target = dialog.querySelector(focusSelector || "[autofocus], input:not([type=hidden]), button");
    if (target) target.focus();
  }

  function resetCreateDialog(dialog) {
    var formStep = dialog.querySelector("[data-step=form]");
    var createdStep = dialog.querySelector("[data-step=created]");
    var secret = createdStep.querySelector(".secret");
    secret.value = "";  // the key leaves the page when the dialog closes
    createdStep.hidden = true;
    formStep.hidden = false;
    var form = formStep.querySelector("form");
    form.reset();
    showFormError(form, null);
  }

  function showFormError(form, error) {
    var slot = form.querySelector(".form-error-slot") || form;
    var box = slot.querySelector(".form-error");
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    if (!error) { if (box) box.remove(); return; }
    if (!box) {
      box = document.createElement("p");
      box.className = "form-error";
      box.id = form.id ? form.id + "-error" : "dialog-form-error";
      box.setAttribute("role", "alert");
      slot.prepend(box);
    }
    box.hidden = false;
    box.textContent = error.message;
    var field = error.field === "scopes" ? form.querySelector("[name=other_scopes]") : form.querySelector("[name='" + error.field + "']");
    if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
  }

  function setEmptyState() {
    var rows = document.querySelectorAll("#key-rows tr");
    var table = document.getElementById("keys-table");
    var empty = document.getElementById("keys-empty");
    if (table) table.hidden = rows.length === 0;
    if (empty) empty.hidden = rows.length !== 0;
  }

  // Show a key's new status in its table row (the switch, its label, the row's classes).
  function showStatus(row, active) {
    if (!row) return;
    var form = row.querySelector("form[data-fetch=toggle]");
    var button = form.querySelector("[role=switch]");
    button.setAttribute("aria-checked", active ? "true" : "false");
    // An expired key keeps saying so whichever way it is switched.
    if (!row.classList.contains("is-expired")) {
      button.querySelector(".switch-label").textContent = active ? "Active" : "Inactive";
    }
    form.querySelector("input[name=status]").value = active ? "INACTIVE" : "ACTIVE";
    row.classList.toggle("is-active", active);
    row.classList.toggle("is-inactive", !active);
  }

  var handlers = {
    toggle: async function (form) {
      var data = await post(form);
      showStatus(form.closest("tr"), data.status === "ACTIVE");
      announce(data.message);
    },
    "deactivate-instead": async function (form) {
      var dialog = form.closest("dialog");
      var data = await post(form);
      dialog.close();
      showStatus(document.getElementById("key-" + data.id), data.status === "ACTIVE");
      announce(data.message);
    },
    "create-key": async function (form) {
      var data;
      try {
        data = await post(form);
      } catch (error) {
        showFormError(form, error);
        return;
      }
      var rows = document.getElementById("key-rows");
      rows.insertAdjacentHTML("afterbegin", data.row_html);
      setEmptyState();
      var dialog = form.closest("dialog");
      var createdStep = dialog.querySelector("[data-step=created]");
      createdStep.querySelector("[data-fill=created-name]").textContent = data.name;
      createdStep.querySelector(".secret").value = data.key;
      dialog.querySelector("[data-step=form]").hidden = true;
      createdStep.hidden = false;
      createdStep.querySelector("[data-copy]").focus();
      announce("Key “" + data.name + "” created. Copy it now: it will not be shown again.");
    },
    "delete-key": async function (form) {
      var dialog = form.closest("dialog");
      var data = await post(form);
      dialog.close();
      var row = document.getElementById("key-" + data.id);
      if (row) row.remove();
      setEmptyState();
      announce(data.message);
    },
  };

  document.addEventListener("submit", async function (event) {
    var form = event.target;
    var kind = form.dataset ? form.dataset.fetch : null;
    if (!kind || !handlers[kind]) return;
    event.preventDefault();
    var buttons = form.querySelectorAll("button");
    var focused = document.activeElement;  // disabling a button drops its focus: given back below
    buttons.forEach(function (b) { b.dataset.wasDisabled = b.disabled ? "1" : ""; b.disabled = true; });
    try {
      await handlers[kind](form);
    } catch (error) {
      var dialog = form.closest("dialog");
      var box = dialog ? dialog.querySelector(".form-error") : null;
      if (box) { box.textContent = error.message; box.hidden = false; }
      else announce(error.message, "error");
    } finally {
      buttons.forEach(function (b) { b.disabled = b.dataset.wasDisabled === "1"; });
      var lost = !document.activeElement || document.activeElement === document.body;
      if (lost && focused && document.contains(focused) && !focused.closest("dialog:not([open])")) focused.focus();
    }
  });

  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      event.preventDefault();
      var dialog = document.getElementById(opener.dataset.openDialog);
      if (dialog) { dialog.returnTo = opener; openDialog(dialog); }
      return;
    }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      event.preventDefault();
      closer.closest("dialog").close();
      return;
    }
    var confirmer = event.target.closest("[data-confirm]");
    if (confirmer) {
      event.preventDefault();
      var confirmDialog = document.getElementById(confirmer.dataset.confirm);
      var form = confirmDialog.querySelector("form[data-confirm-form]") || confirmDialog.querySelector("form");
      form.action = confirmer.dataset.action;
      // An active key's dialog also offers to switch it off instead (read from the row now:
      // its switch may have changed since the page loaded).
      var row = confirmer.closest("tr");
      var offer = Boolean(confirmer.dataset.deactivate && row && row.classList.contains("is-active"));
      confirmDialog.querySelectorAll("[data-if-active]").forEach(function (el) { el.hidden = !offer; });
      var instead = confirmDialog.querySelector("form[data-fetch=deactivate-instead]");
      if (instead && offer) instead.action = confirmer.dataset.deactivate;
      confirmDialog.querySelectorAll("[data-fill=name]").forEach(function (el) { el.textContent = confirmer.dataset.name; });
      var box = confirmDialog.querySelector(".form-error");
      if (box) box.hidden = true;
      confirmDialog.returnTo = confirmer;
      openDialog(confirmDialog, "[data-autofocus]");
      return;
    }
    var copier = event.target.closest("[data-copy]");
    if (copier) copyFrom(copier);
  });

  async function copyFrom(button) {
    var input = document.getElementById(button.dataset.copy);
    try {
      await navigator.clipboard.writeText(input.value);
    } catch (ignored) {
      input.select();
      document.execCommand("copy");
    }
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = "Copy"; }, 2000);
  }

  // Keep Tab and Shift+Tab inside an open dialog: from its last control back to its first, and
  // the other way round (a modal <dialog> alone lets focus leave for the browser's own UI).
  var FOCUSABLE = "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), " +
    "select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex='-1'])";
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Tab") return;
    var dialog = document.querySelector("dialog[open]");
    if (!dialog) return;
    var inside = Array.prototype.filter.call(dialog.querySelectorAll(FOCUSABLE), function (el) {
      return el.getClientRects().length > 0;
    });
    if (!inside.length) return;
    var first = inside[0], last = inside[inside.length - 1], at = document.activeElement;
    var away = !dialog.contains(at);
    if (event.shiftKey && (at === first || away)) { event.preventDefault(); last.focus(); }
    else if (!event.shiftKey && (at === last || away)) { event.preventDefault(); first.focus(); }
  });

  document.querySelectorAll("dialog").forEach(function (dialog) {
    dialog.addEventListener("close", function () {
      if (dialog.id === "create-dialog") resetCreateDialog(dialog);
      var back = dialog.returnTo;
      if (back && document.contains(back)) back.focus();
    });
  });
  // The expiry date matters only for "On a date…": show it only then (it is always shown, and
  // simply ignored for the other choices, when JavaScript is off).
  function syncExpiry(select) {
    var form = select.closest("form");
    var box = form.querySelector("[data-expiry-date]");
    if (!box) return;
    var custom = select.value === "custom";
    box.hidden = !custom;
    box.querySelector("input").required = custom;
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-expiry-choice]")) syncExpiry(event.target);
  });
  document.addEventListener("reset", function (event) {
    var select = event.target.querySelector ? event.target.querySelector("[data-expiry-choice]") : null;
    if (select) setTimeout(function () { syncExpiry(select); }, 0);
  });
  document.querySelectorAll("[data-expiry-choice]").forEach(syncExpiry);
  // "Select every key on this page" needs JavaScript too.
  document.querySelectorAll("[data-select-all]").forEach(function (box) {
    box.hidden = false;
    box.addEventListener("change", function () {
      document.querySelectorAll("input[name=key][form=bulk-form]").forEach(function (one) { one.checked = box.checked; });
    });
  });
  // Copy needs JavaScript, so its buttons appear only when it runs.
  document.querySelectorAll("[data-copy]").forEach(function (b) { b.hidden = false; });
})();
