// What the console needs beyond /v1: the SHOUT port, where live mounts are heard.
let loaded = null;

export function consoleConfig() {
  loaded ??= fetch("config.json", { cache: "no-store" }).then((r) => r.json());
  return loaded;
}

// A live mount on this server's SHOUT port, reached by the name the browser used for the page.
export async function liveMountUrl(mount) {
  const { shout_port } = await consoleConfig();
  return `http://${location.hostname}:${shout_port}${mount}`; // hostname keeps IPv6 brackets
}
