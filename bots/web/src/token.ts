/**
 * The session token, when the server asks for one: given in the link as `#token=...`, kept
 * for this tab only, and taken out of the address bar so it is not shared by copying the URL.
 */
export function sessionToken(): string | null {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("token");
  if (given) {
    sessionStorage.setItem("gemini-live-agent.token", given);
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(null, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
  }
  return given ?? sessionStorage.getItem("gemini-live-agent.token");
}
