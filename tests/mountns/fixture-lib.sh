# shellcheck shell=bash
# fixture-lib.sh - what fixture.sh and composefs-fixture.sh share. Source it;
# the caller defines die(), FIXTURE_VERSION and OSNAME.

# write_env SYSROOT OUT: find, for each boot entry, its ostree= value and the
# deployment it resolves to; number them by the tree they hold (A=1, B=2).
write_env() {
  local s=$1 out=$2 entry target deploy letter n
  local -A tgt dep
  for entry in "$s"/boot/loader/entries/ostree-*.conf; do
    target=$(grep '^options ' "$entry" | grep -o 'ostree=[^ ]*' | head -n1)
    target=${target#ostree=}
    [[ -n $target ]] || die "no ostree= in $entry"
    deploy=$(readlink -f "$s$target")
    letter=$(cat "$deploy/usr/share/which-deployment")
    case $letter in A) n=1 ;; B) n=2 ;; *) die "unexpected deployment content '$letter'" ;; esac
    tgt[$n]=$target
    dep[$n]=${deploy#"$s"/}
  done
  [[ -n ${tgt[1]:-} && -n ${tgt[2]:-} ]] || die "expected two boot entries"
  {
    echo "FIXTURE_VERSION=$FIXTURE_VERSION"
    printf 'OSNAME=%q\n' "$OSNAME"
    printf 'OSTREE_TARGET_1=%q\n' "${tgt[1]}"
    printf 'OSTREE_TARGET_2=%q\n' "${tgt[2]}"
    printf 'DEPLOY_1=%q\n' "${dep[1]}"
    printf 'DEPLOY_2=%q\n' "${dep[2]}"
    printf 'DEPLOY_1_NAME=%q\n' "${dep[1]##*/}"
    printf 'DEPLOY_2_NAME=%q\n' "${dep[2]##*/}"
    printf 'STATEROOT_VAR=%q\n' "ostree/deploy/$OSNAME/var"
  } >"$out"
}
