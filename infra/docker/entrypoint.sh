#!/bin/sh
# Entry point of the Gambit image: the first argument names the process.
#   scheduler | worker | estimator   a service (its configuration comes from the environment)
#   gambit <command> ...             the CLI (replay, import, generate, ...)
#   anything else                    run as given
set -eu
case "${1:-scheduler}" in
  scheduler | worker | estimator)
    svc="${1:-scheduler}"
    [ "$#" -gt 0 ] && shift
    exec node "/app/services/$svc/dist/main.js" "$@"
    ;;
  gambit)
    shift
    exec node /app/packages/cli/dist/bin.js "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
