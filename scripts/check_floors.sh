#!/usr/bin/env bash
# make floors: the fast subset (tests/floors) on the oldest Python and NumPy that
# pyproject.toml declares (requires-python >= 3.10, numpy >= 1.25), and on
# Python 3.12 and 3.13 with the newest NumPy (`make test` runs the whole suite on
# 3.11; with these, every Python the classifiers name is tested). Each run gets a fresh venv in a
# temporary folder, the package installed from the repository (not editable),
# NumPy pinned, pytest, and no torch or hypothesis; pytest runs without conftest.
#
#   scripts/check_floors.sh
#   PYTHON_OLDEST=/path/to/python3.10 PYTHON_NEWER=... PYTHON_NEWEST=... scripts/check_floors.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OLDEST=3.10    # pyproject.toml: requires-python = ">=3.10"
NUMPY_FLOOR="numpy==1.25.*"  # pyproject.toml: numpy>=1.25
NEWER=3.12
NEWEST=3.13

# An interpreter of Python $1 (such as 3.10): $2 if set, else pyenv's newest
# $1.x, else python$1 on the PATH; it must report that version.
find_python() {
    local want="$1" given="$2" candidates=() c
    if [[ -n "$given" ]]; then
        candidates=("$given")
    else
        if command -v pyenv >/dev/null 2>&1; then
            local root
            root="$(pyenv root)"
            # Newest patch release first.
            while IFS= read -r c; do candidates+=("$c"); done < <(
                ls -d "$root/versions/$want".* 2>/dev/null | sort -V -r |
                    sed "s|\$|/bin/python$want|"
            )
        fi
        candidates+=("$(command -v "python$want" 2>/dev/null || true)")
    fi
    for c in "${candidates[@]}"; do
        if [[ -n "$c" && -x "$c" ]] &&
            [[ "$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" == "$want" ]]; then
            echo "$c"
            return 0
        fi
    done
    echo "check_floors: no Python $want found (tried: ${candidates[*]:-none})." >&2
    echo "  Install it (pyenv install $want) or point to one: PYTHON_${3}=/path/to/python$want" >&2
    return 1
}

# run_subset LABEL PYTHON NUMPY_SPEC [NUMPY_PREFIX]
run_subset() {
    local label="$1" python="$2" numpy_spec="$3" numpy_prefix="${4:-}"
    local tmp="$TMP/$label" start=$SECONDS
    mkdir "$tmp"
    echo "--- $label: $("$python" --version) from $python, $numpy_spec"
    "$python" -m venv "$tmp/venv"
    local py="$tmp/venv/bin/python"
    "$py" -m pip install --quiet --disable-pip-version-check "$numpy_spec" pytest "$ROOT"
    local versions
    versions="$(cd "$tmp" && "$py" -c 'import sys, numpy, cnnumpy
print(sys.version.split()[0], numpy.__version__, cnnumpy.__version__, cnnumpy.__file__)')"
    echo "Python, NumPy, cnnumpy, imported from: $versions"
    read -r _ numpy_version _ cnnumpy_file <<<"$versions"
    if [[ -n "$numpy_prefix" && "$numpy_version" != "$numpy_prefix"* ]]; then
        echo "check_floors: expected NumPy $numpy_prefix.*, got $numpy_version" >&2
        return 1
    fi
    if [[ "$cnnumpy_file" != "$tmp/venv/"* ]]; then
        echo "check_floors: cnnumpy was imported from $cnnumpy_file, not the venv" >&2
        return 1
    fi
    # From a folder outside the repository; tests/floors needs no conftest.
    (cd "$tmp" && "$py" -m pytest -q --noconftest -p no:cacheprovider "$ROOT/tests/floors")
    echo "($label: $((SECONDS - start)) s)"
}

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
oldest="$(find_python "$OLDEST" "${PYTHON_OLDEST:-}" OLDEST)"
newer="$(find_python "$NEWER" "${PYTHON_NEWER:-}" NEWER)"
newest="$(find_python "$NEWEST" "${PYTHON_NEWEST:-}" NEWEST)"
run_subset "floors" "$oldest" "$NUMPY_FLOOR" "1.25."
run_subset "python$NEWER" "$newer" "numpy"
run_subset "python$NEWEST" "$newest" "numpy"
echo "floors check passed"
