# Sourced by the lab's device scripts. The device tool brings back files of at most 16 MiB from
# $OUT; exported 4-level models are 21 MB (teacher) and 27 MB (generator).
# send_in_parts FILE PREFIX: FILE as PREFIX.part-00, -01, ... (15 MiB each) and PREFIX.sha256.
# Back here: cat PREFIX.part-* > NAME.safetensors && sha256sum NAME.safetensors (compare).
send_in_parts() {
  split -b 15m -d "$1" "$2.part-" && sha256sum "$1" | cut -d' ' -f1 >"$2.sha256"
}
