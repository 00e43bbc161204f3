# shellcheck shell=bash
# The gateway binary the benchmark scripts run. Sourced by scripts/bench-*.sh.
#
# r2r (the default): the gateway as it ships, published for this machine's runtime, which Gateway.csproj compiles
#      ReadyToRun (the same as the Dockerfile and docs/operations.md). Its code starts out native, so a warm-up is
#      not spent in the JIT's quick first tier.
# jit: the plain build output (bin/Release), as `dotnet run` and the tests use it.

# Builds (unless $2 is 0) and sets GATEWAY_DLL. Needs PGOTEL_ROOT.
gateway_build() { # r2r|jit [build]
  local kind=$1 build=${2:-1} out=$PGOTEL_ROOT/src/Gateway/bin/Release/publish-r2r
  case $kind in
    r2r)
      if [ "$build" = 1 ]; then
        dotnet publish "$PGOTEL_ROOT/src/Gateway" -c Release --use-current-runtime --self-contained false \
          -p:UseAppHost=false -o "$out" -v quiet -nologo >/dev/null
      fi
      GATEWAY_DLL=$out/PgOtelGateway.Gateway.dll
      ;;
    jit)
      if [ "$build" = 1 ]; then
        dotnet build "$PGOTEL_ROOT/src/Gateway" -c Release -v quiet -nologo >/dev/null
      fi
      GATEWAY_DLL=$PGOTEL_ROOT/src/Gateway/bin/Release/net10.0/PgOtelGateway.Gateway.dll
      ;;
    *) echo "gateway build must be r2r or jit, not '$kind'" >&2; return 2 ;;
  esac
  if [ ! -f "$GATEWAY_DLL" ]; then
    echo "no gateway at $GATEWAY_DLL (run without --no-build)" >&2
    return 1
  fi
  export GATEWAY_DLL
}
