// Which Python the examples start the liaison with: $LIAISON_PYTHON, else the
// repository's .venv (the README's set-up), else python3 from PATH. It must have
// liaison-backend (and scipy) installed.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const repositoryVenv = fileURLToPath(new URL("../../../.venv/bin/python", import.meta.url));

export const python =
  process.env.LIAISON_PYTHON ?? (existsSync(repositoryVenv) ? repositoryVenv : "python3");
