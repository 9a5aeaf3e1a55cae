/* wcm — Gaussian noise bit-compatible with PyTorch's CPU generator, so that
 * experiments can use exactly the noise realisation of the authors' scripts
 * (torch.manual_seed(seed); torch.randn(shape) on a float32 tensor).
 *
 * Algorithm (PyTorch 1.13, CPU, float32, contiguous, n >= 16):
 *   1. MT19937 seeded with `seed` (the standard initialisation
 *      mt[0] = seed, mt[i] = 1812433253 (mt[i-1] ^ (mt[i-1] >> 30)) + i).
 *   2. u[i] = (next32() & 0xFFFFFF) * 2^-24 for i = 0 .. n-1.
 *   3. For each block of 16 values, j = 0..7 (Box-Muller):
 *        r = sqrt(-2 ln(1 - u[j])), a = 2 pi u[j+8],
 *        z[j] = r cos a, z[j+8] = r sin a.
 *   4. If n is not a multiple of 16, the last 16 values are recomputed
 *      from 16 fresh uniforms (as PyTorch does).
 * PyTorch evaluates log/cos/sin with vectorised routines that may differ
 * from libm in the last bit; the noise therefore matches to float rounding.
 * The fill is sequential and independent of the thread count. */
#ifndef WCM_RNG_TORCH_H
#define WCM_RNG_TORCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out[0..n) = torch.randn(n) after torch.manual_seed(seed). n >= 16 for
 * bit-compatibility (smaller n uses the same transform on a single block). */
void wcm_randn_torch(uint64_t seed, float *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif
