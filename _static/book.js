// A link inside a solution's title (to its exercise) follows the link without closing the
// solution again: the click stops at the link instead of reaching the dropdown's toggle.
document.addEventListener("DOMContentLoaded", () => {
  for (const link of document.querySelectorAll(".solution .admonition-title a")) {
    link.addEventListener("click", (event) => event.stopPropagation());
  }
});
