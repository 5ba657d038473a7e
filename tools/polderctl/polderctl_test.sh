#!/usr/bin/env bash
# End-to-end walk-through of polderctl (the README's security section): a federation PKI, two
# peers, signing keys, a signed directory and a contract signed by both parties — and the
# refusals: one signature only, a changed directory, an unpinned operator key, a revoked
# contract, bad input. Checks key file modes and that no private key is ever printed.
set -uo pipefail
P="$TEST_SRCDIR/$TEST_WORKSPACE/tools/polderctl/polderctl"
W="$TEST_TMPDIR/walk"
rm -rf "$W"; mkdir -p "$W"; cd "$W"
fails=0
log="$W/all-output.txt"
ok()   { if "$P" "$@" >>"$log" 2>&1; then :; else echo "FAIL: expected success: polderctl $*"; tail -3 "$log"; fails=$((fails+1)); fi; }
# refuse <expected exit> <expected message part> <args...>
refuse() {
  local want_rc=$1 want_msg=$2; shift 2
  local out rc
  out=$("$P" "$@" 2>&1); rc=$?
  echo "$out" >>"$log"
  if [ "$rc" -ne "$want_rc" ]; then echo "FAIL: polderctl $*: exit $rc, want $want_rc"; echo "$out"; fails=$((fails+1)); return; fi
  if ! grep -qF -- "$want_msg" <<<"$out"; then echo "FAIL: polderctl $*: message lacks '$want_msg':"; echo "$out"; fails=$((fails+1)); fi
}

ok pki init --dir pki --federation nl-smartcity
for peer in groningen amersfoort; do
  ok pki issue --dir pki --peer $peer --out $peer/tls --dns localhost --ip 127.0.0.1 --validity 720h
  ok keys new --out $peer/signing.key
done
ok keys new --out operator.key
ok directory create --federation nl-smartcity --serial 1 --out directory.json
ok directory add-peer --file directory.json --peer groningen --endpoint localhost:8443 \
   --tls-cert groningen/tls/cert.pem --signing-key groningen/signing.key.pub
ok directory add-peer --file directory.json --peer amersfoort --endpoint localhost:9443 \
   --tls-cert amersfoort/tls/cert.pem --signing-key amersfoort/signing.key.pub
refuse 1 "directory is not signed" directory verify --file directory.json --operator-key operator.key.pub
ok directory sign --file directory.json --key operator.key
ok directory verify --file directory.json --operator-key operator.key.pub

# JSON output is machine-readable and carries the facts.
json=$("$P" directory verify --file directory.json --operator-key operator.key.pub -o json)
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["ok"] and d["serial"]==1 and d["peers"]==["groningen","amersfoort"], d' "$json" \
  || { echo "FAIL: directory verify -o json: $json"; fails=$((fails+1)); }

# A directory about to expire is reported ahead of time.
ok directory create --federation nl-smartcity --serial 2 --valid-for 48h --out short.json
ok directory add-peer --file short.json --peer groningen --endpoint localhost:8443 \
   --tls-cert groningen/tls/cert.pem --signing-key groningen/signing.key.pub
ok directory sign --file short.json --key operator.key
out=$("$P" directory verify --file short.json --operator-key operator.key.pub)
grep -q "warning: the directory expires in 4" <<<"$out" || { echo "FAIL: no expiry warning: $out"; fails=$((fails+1)); }

ok contract propose --id gr-am-bikes-1 --federation nl-smartcity --provider groningen \
   --consumer amersfoort --dataset mobility.bike-counts --schema-versions 1,2 \
   --purpose "regional cycling dashboard" --out contract.json
ok contract sign --file contract.json --peer groningen --key groningen/signing.key
refuse 1 "not signed by the consumer 'amersfoort'" contract verify --file contract.json \
   --directory directory.json --operator-key operator.key.pub
refuse 1 "not a party" contract sign --file contract.json --peer enschede --key amersfoort/signing.key
ok contract sign --file contract.json --peer amersfoort --key amersfoort/signing.key
ok contract verify --file contract.json --directory directory.json --operator-key operator.key.pub

# An aggregate-only contract for one view (ADR 0016 §12): the view and its definition hashes
# are part of the signed document; a view needs aggregate-only, hashes need a view and must be
# SHA-256 hex.
h1=$(printf 'a%.0s' $(seq 64)); h2=$(printf 'b%.0s' $(seq 64)); h3=$(printf 'c%.0s' $(seq 64))
refuse 1 "not a hex SHA-256" contract propose --id x --federation nl-smartcity --provider groningen \
   --consumer amersfoort --dataset mobility.bike-counts --schema-versions 1 --access aggregate-only \
   --view quarter-municipality --definition-hashes aaaa1111 --purpose p --out x.json
ok contract propose --id gr-am-view-1 --federation nl-smartcity --provider groningen \
   --consumer amersfoort --dataset mobility.bike-counts --schema-versions 1 --access aggregate-only \
   --view quarter-municipality --definition-hashes "$h1,$h2" \
   --purpose "national cycling figures" --out view-contract.json
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); v=c["contract"]["view"]; assert c["contract"]["access"]=="aggregate-only" and v["id"]=="quarter-municipality" and v["definition_hashes"]==[sys.argv[2],sys.argv[3]], c' view-contract.json "$h1" "$h2" \
  || { echo "FAIL: contract propose --view: $(cat view-contract.json)"; fails=$((fails+1)); }
ok contract sign --file view-contract.json --peer groningen --key groningen/signing.key
ok contract sign --file view-contract.json --peer amersfoort --key amersfoort/signing.key
ok contract verify --file view-contract.json --directory directory.json --operator-key operator.key.pub
sed "s/$h2/$h3/" view-contract.json > tampered-view-contract.json
refuse 1 "does not match the document" contract verify --file tampered-view-contract.json \
   --directory directory.json --operator-key operator.key.pub
refuse 1 "only with --view" contract propose --id x --federation nl-smartcity --provider groningen \
   --consumer amersfoort --dataset mobility.bike-counts --schema-versions 1 --access aggregate-only \
   --definition-hashes "$h1" --purpose p --out x.json
refuse 1 "view" contract propose --id x --federation nl-smartcity --provider groningen \
   --consumer amersfoort --dataset mobility.bike-counts --schema-versions 1 --access raw \
   --view quarter-municipality --definition-hashes "$h1" --purpose p --out x.json

# Tampering and wrong keys.
sed 's/localhost:9443/evil.example:9443/' directory.json > tampered.json
refuse 1 "does not match the document" directory verify --file tampered.json --operator-key operator.key.pub
refuse 1 "not a pinned operator key" directory verify --file directory.json --operator-key groningen/signing.key.pub
sed 's/regional cycling dashboard/resale to advertisers/' contract.json > tampered-contract.json
refuse 1 "does not match the document" contract verify --file tampered-contract.json \
   --directory directory.json --operator-key operator.key.pub

# Revocation.
ok contract revoke --file contract.json --peer amersfoort --key amersfoort/signing.key \
   --reason "pilot ended" --out revocation.json
refuse 1 "was revoked by 'amersfoort'" contract verify --file contract.json --directory directory.json \
   --operator-key operator.key.pub --revocation revocation.json
ok pki revoke --dir pki --cert amersfoort/tls/cert.pem
serial=$("$P" pki issue --dir pki --peer enschede --out enschede/tls -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serial"])')
openssl verify -CAfile pki/bundle.pem -untrusted pki/issuing/ca.pem -crl_check -CRLfile pki/crl/issuing.crl.pem \
   amersfoort/tls/cert.pem >>"$log" 2>&1 && { echo "FAIL: revoked certificate still verifies"; fails=$((fails+1)); }
openssl verify -CAfile pki/bundle.pem -untrusted pki/issuing/ca.pem -crl_check -CRLfile pki/crl/issuing.crl.pem \
   groningen/tls/cert.pem >>"$log" 2>&1 || { echo "FAIL: groningen's certificate should verify"; fails=$((fails+1)); }
[ -n "$serial" ] || { echo "FAIL: pki issue -o json gave no serial"; fails=$((fails+1)); }

# Bad input: usage errors exit 2, other errors 1, each with the reason.
refuse 2 "unknown flag --colour" keys new --out x.key --colour
refuse 2 "--out is required" keys new
refuse 2 "unknown command" pki frobnicate
refuse 1 "is not a lowercase slug" pki issue --dir pki --peer Groningen --out bad
refuse 1 "not a positive duration" pki issue --dir pki --peer utrecht --out bad --validity soon
refuse 1 "refusing to overwrite a key" keys new --out operator.key
refuse 1 "already holds a PKI" pki init --dir pki --federation nl-smartcity

# Private keys: mode 0600, never printed.
for k in pki/root/ca.key pki/issuing/ca.key groningen/tls/key.pem amersfoort/signing.key operator.key; do
  mode=$(stat -c %a "$k")
  [ "$mode" = "600" ] || { echo "FAIL: $k has mode $mode"; fails=$((fails+1)); }
done
if grep -q "PRIVATE KEY" "$log"; then echo "FAIL: a private key was printed"; fails=$((fails+1)); fi
for k in groningen/signing.key operator.key; do
  body=$(sed -n 2p "$k")
  if grep -qF -- "$body" "$log"; then echo "FAIL: key material of $k was printed"; fails=$((fails+1)); fi
done

if [ "$fails" -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "polderctl walk-through: all checks passed"
