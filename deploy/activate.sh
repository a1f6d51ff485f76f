# Source this file (`. deploy/activate.sh`) to put nearline's virtualenv on PATH.
_nearline_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
export PATH="$_nearline_root/.venv/bin:$PATH"
unset _nearline_root
