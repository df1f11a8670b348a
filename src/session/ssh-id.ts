/** The SSH agent id buildkit uses when a mount or flag names none. */
export const DEFAULT_SSH_ID = "default";
