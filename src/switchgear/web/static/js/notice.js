// The page's one message line: a polite status, or an alert for what went wrong.

let timer = null;

export function announce(text, isError = false) {
  const el = document.getElementById("alert");
  el.textContent = text;
  el.hidden = !text;
  el.classList.toggle("ok", !isError);
  clearTimeout(timer);
  if (text) timer = setTimeout(() => { el.hidden = true; }, 8000);
}
