/* wcm — the communicator: what a data-parallel run needs from its processes
 * (ranks), behind one small interface so that the trainer and the commands
 * never call MPI themselves.
 *
 * Two implementations: the serial communicator (one rank; every collective
 * is a copy or nothing), always there, and MPI's world communicator when wcm
 * was built with MPI (-DWCM_MPI=ON or AUTO, the default, when Open MPI is
 * found) and the process was started by mpirun / mpiexec. A process started
 * any other way is serial, so the MPI build behaves like the serial one
 * outside mpirun.
 *
 * Collectives must be called by every rank in the same order. Floating-point
 * sums over ranks are MPI's (deterministic for a given number of ranks; not
 * necessarily equal, bit for bit, to a single process's sum); the trainer's
 * exact sums use integer sums and sums of disjoint rows instead. */
#ifndef WCM_COMM_H
#define WCM_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "wcm/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wcm_comm wcm_comm;

/* The serial communicator (rank 0 of 1); never fails, never freed. */
wcm_comm *wcm_comm_serial(void);
/* The world: MPI's when started by mpirun in an MPI build (MPI is
 * initialised on the first call and finalised at exit), else the serial one. */
int wcm_comm_world(wcm_comm **out, wcm_error *err);
/* Non-zero when this build can use MPI. */
int wcm_comm_have_mpi(void);

int wcm_comm_rank(const wcm_comm *c);
int wcm_comm_size(const wcm_comm *c);
const char *wcm_comm_name(const wcm_comm *c); /* "serial" or "mpi" */

/* In place: x[i] = the sum over ranks of x[i]. */
int wcm_comm_allreduce_double(wcm_comm *c, double *x, size_t n, wcm_error *err);
int wcm_comm_allreduce_float(wcm_comm *c, float *x, size_t n, wcm_error *err);
/* Integer sums are exact, so their result does not depend on the order. */
int wcm_comm_allreduce_int64(wcm_comm *c, int64_t *x, size_t n, wcm_error *err);
/* bytes of buf from rank `root` to every rank. */
int wcm_comm_broadcast(wcm_comm *c, void *buf, size_t bytes, int root, wcm_error *err);
int wcm_comm_barrier(wcm_comm *c, wcm_error *err);
/* Ends every rank's process with `code` (an error on one rank would leave
 * the others waiting in a collective); on the serial communicator, returns. */
void wcm_comm_abort(wcm_comm *c, int code);

/* Rank r's share of n items split into size contiguous parts:
 * [*first, *first + *count), sizes differing by at most one. */
void wcm_comm_share(int n, int rank, int size, int *first, int *count);

#ifdef __cplusplus
}
#endif
#endif
