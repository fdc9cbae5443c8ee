import { libraryPath } from "./preloaded.ts";

/** Where the agent library is: $AGENT_SO, else the build directory next to this checkout. */
export function agentPath(): string {
  return libraryPath("libbpftime-agent.so", "AGENT_SO");
}
