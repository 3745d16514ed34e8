# Sourced by scripts/build-llama-server.sh and .ci/run: the CPU features both llama.cpp builds target.
#
# A native build (llama.cpp's default) enables every instruction set the build machine reports. On an
# Intel machine that reports AMX, ggml then runs its matrix products on AMX tiles, and in a virtual
# machine whose kernel does not grant AMX state to processes the first `ldtilecfg` kills the server
# with SIGSEGV. Targeting AVX2/FMA/F16C (what every x86-64 server of the last decade has, AMD or Intel)
# gives one build that runs wherever the cached binary is used; SmolLM2-135M is small enough that the
# wider vector units would not matter for the tests.
LLAMA_CPU_TARGET="cpu=avx2"
LLAMA_CPU_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
