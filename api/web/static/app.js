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
