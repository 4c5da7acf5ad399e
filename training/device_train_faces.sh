#!/usr/bin/env bash
# Train the face models on a lent GPU machine (Keras 3 on the JAX backend; TensorFlow is not
# installed there). Prepared beforehand on this machine, both ignored by git:
#   .devdata/fer_{train,test}.npz  from training.data.pack_face_folder (original JPEG bytes)
#   .whl/                          keras, namex, optree wheels for Python 3.12
# Two runs (three with SECOND_VGG=1) share the GPU, each sized to BUDGET minutes of training by its schedule; every
# model, card and log is tarred into $OUT. The .keras files load unchanged on TensorFlow/CPU.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
BUDGET=${BUDGET:-6.5}; EPOCHS=${EPOCHS:-150}; LIMIT=${LIMIT:+--limit $LIMIT}
if [ -d .whl ] && ! python3 -c "import keras" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD KERAS_BACKEND=${KERAS_BACKEND:-jax}
export XLA_PYTHON_CLIENT_PREALLOCATE=false XLA_PYTHON_CLIENT_MEM_FRACTION=0.3 PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
nvidia-smi -L 2>/dev/null
python3 -c "import keras, jax; print('keras', keras.__version__, 'jax', jax.__version__, jax.devices())" 2>&1 | tail -1
# One tiny fit on the chosen backend; if it fails there, fall back to PyTorch.
smoke='import numpy as np, keras; m = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(), keras.layers.Dense(7, activation="softmax")]); m.compile("adam", "categorical_crossentropy"); m.fit(np.zeros((8, 48, 48, 1)), np.eye(7)[np.arange(8) % 7], verbose=0); print("smoke ok on", keras.backend.backend())'
if ! python3 -c "$smoke" 2>&1 | tail -1 | grep -q "smoke ok"; then
  echo "backend $KERAS_BACKEND failed the smoke fit; using torch"; export KERAS_BACKEND=torch
  python3 -c "$smoke" 2>&1 | tail -1
fi
common="--data .devdata/fer_train.npz --test .devdata/fer_test.npz --epochs $EPOCHS --budget-minutes $BUDGET --runs /tmp/runs $LIMIT"
mkdir -p /tmp/models/face_cnn /tmp/models/face_vgg /tmp/models/face_vgg_b
timeout ${TIMEOUT:-540} python3 -m training.train_face_cnn $common --name face_cnn --width 0.5 --out /tmp/models/face_cnn > "$OUT/face_cnn.log" 2>&1 &
timeout ${TIMEOUT:-540} python3 -m training.train_face_vgg $common --name face_vgg --width 0.5 --out /tmp/models/face_vgg > "$OUT/face_vgg.log" 2>&1 &
[ -n "${SECOND_VGG:-}" ] && timeout ${TIMEOUT:-540} python3 -m training.train_face_vgg $common --name face_vgg_b --width 0.5 --lr 2e-3 --label-smoothing 0 --seed 7 --out /tmp/models/face_vgg_b > "$OUT/face_vgg_b.log" 2>&1 &
wait
for name in face_cnn face_vgg ${SECOND_VGG:+face_vgg_b}; do
  if [ -f /tmp/models/$name/$name.keras ]; then tar czf "$OUT/$name.tgz" -C /tmp/models/$name .
  else tar czf "$OUT/$name.tgz" -C /tmp/runs/$name state.json train.log 2>/dev/null; fi  # checkpoints hold optimizer state: too big to return
  tail -3 "$OUT/$name.log"
done
ls -la "$OUT"
