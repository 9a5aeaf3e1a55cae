/* The serial communicator, and MPI's world communicator in builds with
 * WCM_HAVE_MPI (see include/wcm/comm.h). */
#include "wcm/comm.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#ifdef WCM_HAVE_MPI
#include <mpi.h>
#endif

struct wcm_comm {
    int rank, size, mpi;
};

static wcm_comm serial_comm = {0, 1, 0};

wcm_comm *wcm_comm_serial(void) { return &serial_comm; }

int wcm_comm_have_mpi(void) {
#ifdef WCM_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int wcm_comm_rank(const wcm_comm *c) { return c ? c->rank : 0; }
int wcm_comm_size(const wcm_comm *c) { return c ? c->size : 1; }
const char *wcm_comm_name(const wcm_comm *c) { return c && c->mpi ? "mpi" : "serial"; }

void wcm_comm_share(int n, int rank, int size, int *first, int *count) {
    const long long lo = (long long)n * rank / size, hi = (long long)n * (rank + 1) / size;
    *first = (int)lo;
    *count = (int)(hi - lo);
}

#ifdef WCM_HAVE_MPI
static wcm_comm world_comm = {0, 1, 1};
static int world_ready;

static void finalize_mpi(void) {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
}

/* Started by a process manager (Open MPI's, or a PMI-based one)? */
static int launched_by_mpirun(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

static int mpi_check(int rc, const char *what, wcm_error *err) {
    if (rc == MPI_SUCCESS) return WCM_OK;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    return wcm_fail(err, WCM_ERR_IO, "MPI %s failed: %.*s", what, len, text);
}

/* MPI counts are ints: larger transfers go in pieces. */
#define MPI_PIECE ((size_t)1 << 28)
#endif

int wcm_comm_world(wcm_comm **out, wcm_error *err) {
    *out = &serial_comm;
#ifdef WCM_HAVE_MPI
    if (world_ready) {
        *out = &world_comm;
        return WCM_OK;
    }
    if (!launched_by_mpirun()) return WCM_OK;
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int rc = mpi_check(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided), "initialisation", err);
        if (rc) return rc;
        atexit(finalize_mpi);
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &world_comm.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_comm.size);
    world_ready = 1;
    *out = &world_comm;
#else
    (void)err;
#endif
    return WCM_OK;
}

#ifdef WCM_HAVE_MPI
static int allreduce(void *x, size_t n, MPI_Datatype type, size_t size, wcm_error *err) {
    for (size_t i = 0; i < n; i += MPI_PIECE) {
        int rc = mpi_check(MPI_Allreduce(MPI_IN_PLACE, (char *)x + i * size, (int)(n - i < MPI_PIECE ? n - i : MPI_PIECE),
                                         type, MPI_SUM, MPI_COMM_WORLD),
                           "all-reduce", err);
        if (rc) return rc;
    }
    return WCM_OK;
}
#endif

int wcm_comm_allreduce_double(wcm_comm *c, double *x, size_t n, wcm_error *err) {
    if (!c || !c->mpi || c->size == 1) return WCM_OK;
#ifdef WCM_HAVE_MPI
    return allreduce(x, n, MPI_DOUBLE, sizeof *x, err);
#else
    (void)x, (void)n, (void)err;
    return WCM_OK;
#endif
}

int wcm_comm_allreduce_int64(wcm_comm *c, int64_t *x, size_t n, wcm_error *err) {
    if (!c || !c->mpi || c->size == 1) return WCM_OK;
#ifdef WCM_HAVE_MPI
    return allreduce(x, n, MPI_INT64_T, sizeof *x, err);
#else
    (void)x, (void)n, (void)err;
    return WCM_OK;
#endif
}

int wcm_comm_allreduce_float(wcm_comm *c, float *x, size_t n, wcm_error *err) {
    if (!c || !c->mpi || c->size == 1) return WCM_OK;
#ifdef WCM_HAVE_MPI
    return allreduce(x, n, MPI_FLOAT, sizeof *x, err);
#else
    (void)x, (void)n, (void)err;
    return WCM_OK;
#endif
}

int wcm_comm_broadcast(wcm_comm *c, void *buf, size_t bytes, int root, wcm_error *err) {
    if (!c || !c->mpi || c->size == 1) return WCM_OK;
#ifdef WCM_HAVE_MPI
    for (size_t i = 0; i < bytes; i += MPI_PIECE) {
        int rc = mpi_check(MPI_Bcast((char *)buf + i, (int)(bytes - i < MPI_PIECE ? bytes - i : MPI_PIECE), MPI_BYTE,
                                     root, MPI_COMM_WORLD),
                           "broadcast", err);
        if (rc) return rc;
    }
#else
    (void)buf, (void)bytes, (void)root, (void)err;
#endif
    return WCM_OK;
}

int wcm_comm_barrier(wcm_comm *c, wcm_error *err) {
    if (!c || !c->mpi || c->size == 1) return WCM_OK;
#ifdef WCM_HAVE_MPI
    return mpi_check(MPI_Barrier(MPI_COMM_WORLD), "barrier", err);
#else
    (void)err;
    return WCM_OK;
#endif
}

void wcm_comm_abort(wcm_comm *c, int code) {
    if (!c || !c->mpi || c->size == 1) return;
#ifdef WCM_HAVE_MPI
    MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
#else
    (void)code;
#endif
}
