/** Where the agent library is: $AGENT_SO, else the build directory next to this checkout. */
export function agentPath(): string {
  const fromEnv = Deno.env.get("AGENT_SO");
  if (fromEnv) return fromEnv;
  return new URL("../build/libbpftime-agent.so", import.meta.url).pathname;
}
