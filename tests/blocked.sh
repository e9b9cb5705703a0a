#!/bin/sh
# The engine's channel-blocked activations (model/engine.c, plan_blocked):
# values between the direct convolutions kept in blocks of 16 channels.
# On tests/models/make_blockmix.py's network (every way a value meets the
# layout: Adds of blocked values, a broadcasting Add, readers that need C
# order), its --thin network (a compressed model's thin layers), the
# Fashion-MNIST ResNet and on ResNet-50 and MobileNet-v2 when $LR_MODEL_DIR has them
# (and LR_MODELS, if set, names them):
#  - lowrank run matches ONNX Runtime (1e-4 relative), batch 1 and 3;
#  - with every Conv on the direct kernels, the blocked run is
#    bit-identical to the C-order one (LR_NO_BLOCKED) when padded layers
#    read blocks through a padded copy (LR_BLK_PAD_COPY), as in C order:
#    the same sums in the same order, only stored elsewhere; read in place
#    (the default), a border output skips the taps outside the image and
#    sums taps in another order: within 1e-6 of it (1e-5 on ResNet-50 and
#    MobileNet-v2, 50 layers deep);
#  - the blocked run did block (bench --json: blocked_nodes > 0), and
#    LR_NO_BLOCKED, or kernels capped at AVX2, do not;
#  - the same for runs on the kernels rank selection times with (run and
#    bench --pricing), which keep thin layers on small maps in blocks too.
# The Fashion-MNIST ResNet's BatchNormalizations, folded into their Convs,
# pass blocks on.
# Without AVX-512 nothing is blocked: the last checks then expect 0.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
MD=$(model_dir)
BM="$TMP/blockmix.onnx"
DIRECT="LR_NO_PW1X1=1 LR_NO_CONV_LANES=1 LR_NO_SMALLC=1 LR_CONV_DIRECT_FORCE=1"

"$PYTHON3" "$top_srcdir/tests/models/make_blockmix.py" "$BM" >"$TMP/export.log" 2>&1
ok_log $? "$TMP/export.log" "export the blockmix network with torch.onnx.export"
avx512=0
grep -q avx512f /proc/cpuinfo 2>/dev/null && avx512=1

blocked_nodes() { # MODEL SHAPE [ENV...]: blocked_nodes of one bench run (BN_THREADS, default 1; BN_PRICING=1: --pricing)
	m=$1; s=$2; shift 2
	env "$@" "$LOWRANK" bench "$m" --input-shape "$s" --repeat 1 --warmup 0 \
		--threads "${BN_THREADS:-1}" ${BN_PRICING:+--pricing} --json |
		"$PYTHON3" -c "import json,sys; print(json.load(sys.stdin)['blocked_nodes'])"
}

check_model() { # NAME FILE C HW
	name=$1; f=$2; c=$3; hw=$4
	for b in 1 3; do
		"$PYTHON3" "$ORT_DIR/compare.py" --random-input "$b,$c,$hw,$hw" "$TMP/x.npy" --seed $b >/dev/null
		for t in 1 2; do
			"$LOWRANK" run "$f" "$TMP/x.npy" -o "$TMP/ours.npy" --threads $t 2>"$TMP/err"
			[ $t -eq 2 ] || "$NODE" "$ORT_DIR/ort_run.js" run "$f" "$TMP/x.npy" "$TMP/ort.npy" \
				--threads 1 >/dev/null 2>&1
			res=$("$PYTHON3" "$ORT_DIR/compare.py" "$TMP/ours.npy" "$TMP/ort.npy" --rtol 1e-4 --atol 0 2>&1)
			ok $? "$name batch $b, $t thread(s): matches ONNX Runtime ($(echo "$res" | grep "max rel error" | tr -s " "))"
			env $DIRECT LR_NO_BLOCKED=1 "$LOWRANK" run "$f" "$TMP/x.npy" -o "$TMP/plain.npy" --threads $t &&
				env $DIRECT LR_BLK_PAD_COPY=1 "$LOWRANK" run "$f" "$TMP/x.npy" -o "$TMP/blk.npy" --threads $t &&
				cmp -s "$TMP/plain.npy" "$TMP/blk.npy"
			ok $? "$name batch $b, $t thread(s): blocked (padded copies) and C-order runs are bit-identical"
			near=1e-6
			case $name in resnet50|mobilenet_v2) near=1e-5 ;; esac
			env $DIRECT "$LOWRANK" run "$f" "$TMP/x.npy" -o "$TMP/blk.npy" --threads $t &&
				res=$("$PYTHON3" "$ORT_DIR/compare.py" "$TMP/blk.npy" "$TMP/plain.npy" --rtol $near --atol 0 2>&1)
			ok $? "$name batch $b, $t thread(s): blocked read in place is within $near of C order ($(echo "$res" | grep "max rel error" | tr -s " "))"
			"$LOWRANK" run "$f" "$TMP/x.npy" -o "$TMP/pricing.npy" --threads $t --pricing 2>"$TMP/err"
			res=$("$PYTHON3" "$ORT_DIR/compare.py" "$TMP/pricing.npy" "$TMP/ort.npy" --rtol 1e-4 --atol 0 2>&1)
			ok $? "$name batch $b, $t thread(s), pricing: matches ONNX Runtime ($(echo "$res" | grep "max rel error" | tr -s " "))"
			# (A 1-channel stem writing blocks runs on the direct
			# kernels, in C order on the depthwise one, a 1-channel
			# Conv being one: other sums, so 1e-6 there.)
			rel="bit-identical to"
			[ $c -eq 1 ] && rel="within 1e-6 of"
			env $DIRECT LR_BLK_PAD_COPY=1 "$LOWRANK" run "$f" "$TMP/x.npy" -o "$TMP/pblk.npy" --threads $t --pricing &&
				if [ $c -eq 1 ]; then
					"$PYTHON3" "$ORT_DIR/compare.py" "$TMP/pblk.npy" "$TMP/plain.npy" --rtol 1e-6 --atol 0 >/dev/null
				else
					cmp -s "$TMP/plain.npy" "$TMP/pblk.npy"
				fi
			ok $? "$name batch $b, $t thread(s): the pricing run on blocks is $rel the C-order one"
		done
	done
	n_on=$(blocked_nodes "$f" "1,$c,$hw,$hw")
	n_off=$(blocked_nodes "$f" "1,$c,$hw,$hw" LR_NO_BLOCKED=1)
	n_avx2=$(blocked_nodes "$f" "1,$c,$hw,$hw" LR_CONV_ISA=avx2)
	if [ $avx512 -eq 1 ]; then
		# (thin: only pricing runs block it)
		{ [ "$n_on" -gt 0 ] || [ "$name" = thin ]; } && [ "$n_off" -eq 0 ] && [ "$n_avx2" -eq 0 ]
	else
		[ "$n_on" -eq 0 ] && [ "$n_off" -eq 0 ]
	fi
	ok $? "$name: $n_on nodes wrote blocked values, $n_off with LR_NO_BLOCKED, $n_avx2 on AVX2 kernels (AVX-512: $avx512)"
	p_on=$(BN_PRICING=1 blocked_nodes "$f" "1,$c,$hw,$hw")
	p_thin=$(BN_PRICING=1 blocked_nodes "$f" "1,$c,$hw,$hw" LR_NO_BLK_PRICE_THIN=1)
	if [ $avx512 -eq 1 ]; then
		[ "$p_on" -ge "$n_on" ] && [ "$p_thin" -eq "$n_on" ]
	else
		[ "$p_on" -eq 0 ] && [ "$p_thin" -eq 0 ]
	fi
	ok $? "$name: pricing runs block $p_on nodes, $p_thin with LR_NO_BLK_PRICE_THIN (others: $n_on)"
	if [ "$name" = thin ] || [ "$name" = fmnist_resnet ]; then
		# thin: all but the last Conv, strided or not; the ResNet: its
		# 32-filter stem and layer1 (in blockmix the thin layers feed a
		# Concat through Adds: C order either way).
		if [ $avx512 -eq 1 ]; then [ "$p_on" -gt "$n_on" ]; else [ "$p_on" -eq 0 ]; fi
		ok $? "$name: pricing runs block more nodes than others ($p_on > $n_on)"
	fi
	if [ "$name" = fmnist_resnet ]; then
		n_bn=$(blocked_nodes "$f" "1,$c,$hw,$hw" LR_NO_BLK_BN=1)
		if [ $avx512 -eq 1 ]; then [ "$n_on" -gt 0 ] && [ "$n_bn" -eq 0 ]; else [ "$n_bn" -eq 0 ]; fi
		ok $? "fmnist_resnet: folded BatchNormalizations pass blocks on ($n_on nodes blocked, $n_bn with LR_NO_BLK_BN)"
	fi
	if [ "$name" = blockmix ]; then
		# b, read by c and by the 16-filter stride-2 d, stays blocked
		# only because a strided thin Conv reads blocks.
		n_thin=$(blocked_nodes "$f" "1,$c,$hw,$hw" LR_NO_BLK_STRIDED_THIN=1)
		if [ $avx512 -eq 1 ]; then [ "$n_on" -gt "$n_thin" ]; else [ "$n_thin" -eq 0 ]; fi
		ok $? "$name: a strided 16-filter Conv keeps its input blocked ($n_on nodes blocked, $n_thin with LR_NO_BLK_STRIDED_THIN)"
		# c, read by the 16-filter 1x1 e on its 10x10 map, stays
		# blocked only because such a Conv reads blocks (the map size
		# comes from a dry run of the declared input).
		n_small=$(blocked_nodes "$f" "1,$c,$hw,$hw" LR_NO_BLK_SMALL_THIN=1)
		if [ $avx512 -eq 1 ]; then [ "$n_on" -gt "$n_small" ]; else [ "$n_small" -eq 0 ]; fi
		ok $? "$name: a 16-filter 1x1 on a 10x10 map keeps its input blocked ($n_on nodes blocked, $n_small with LR_NO_BLK_SMALL_THIN)"
	fi
	# A batch run image by image counts one image's part as batch 1 does
	# (it counted only the part after the images once).
	n_b3=$(BN_THREADS=2 blocked_nodes "$f" "3,$c,$hw,$hw")
	[ "$n_b3" -eq "$n_on" ]
	ok $? "$name: batch 3 on 2 threads counts $n_b3 blocked nodes, as batch 1 ($n_on)"
}

check_model blockmix "$BM" 32 20
"$PYTHON3" "$top_srcdir/tests/models/make_blockmix.py" "$TMP/thin.onnx" --thin >"$TMP/export.log" 2>&1
ok_log $? "$TMP/export.log" "export the thin network (make_blockmix.py --thin)"
check_model thin "$TMP/thin.onnx" 32 20
check_model fmnist_resnet "$top_srcdir/tests/data/fmnist_resnet.onnx" 1 28
# blockmix: of its 9 planned values, the broadcasting Add's output is not
# blocked (its inputs got C-order copies): 8 nodes.
if [ $avx512 -eq 1 ]; then
	[ "$(blocked_nodes "$BM" 1,32,20,20)" -eq 8 ]
	ok $? "blockmix: the broadcasting Add ran on C-order copies (8 blocked nodes, not 9)"
fi
for m in resnet50 mobilenet_v2; do
	case " ${LR_MODELS:-resnet50 mobilenet_v2} " in
	*" $m "*) ;;
	*) ok 0 "# SKIP $m: not in LR_MODELS"; continue ;;
	esac
	if [ -f "$MD/$m.onnx" ]; then
		check_model $m "$MD/$m.onnx" 3 224
	else
		ok 0 "# SKIP $m: not exported in $MD (tests/ort_models.sh exports it)"
	fi
done
done_testing
