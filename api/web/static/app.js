// Column chooser: move a column up or down (the ticked boxes are submitted in list order).
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-move]");
  if (!button) return;
  var item = button.closest("li");
  var list = item && item.parentElement;
  if (!list) return;
  if (button.dataset.move === "up" && item.previousElementSibling) {
    list.insertBefore(item, item.previousElementSibling);
  } else if (button.dataset.move === "down" && item.nextElementSibling) {
    list.insertBefore(item.nextElementSibling, item);
  }
  button.focus();
});

// An embedded session that expired while the page polled: reload to show why (the server
// answers 401 with a "session ended" page, which htmx would otherwise not display).
document.addEventListener("htmx:responseError", function (event) {
  if (event.detail.xhr && event.detail.xhr.status === 401) window.location.reload();
});

// A button with data-confirm asks before its form is sent (e.g. disabling a user).
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) event.preventDefault();
});

// Ticking a scope of a new API key makes it a restricted key (the server refuses the mix).
document.addEventListener("change", function (event) {
  var box = event.target.closest("input[data-restricts]");
  if (!box || !box.checked) return;
  var restricted = box.form && box.form.querySelector('input[name="' + box.dataset.restricts + '"][value="restricted"]');
  if (restricted) restricted.checked = true;
});
