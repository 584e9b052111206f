/*
 * The lease protocol of one idempotency key (docs/verification.md), as the
 * store contract of docs/design.md states it: Begin, Complete, Release and
 * Extend with lease expiry, takeover and fencing. Keys are independent, so
 * one key is modelled; NCLIENTS gateways send the same request (same
 * fingerprint) with up to NATTEMPTS attempts each.
 *
 * Checked (assertions and the LTL formula `safe`):
 *   - at most one completed execution: the record's result is written at
 *     most once, and no Begin hands out an execution after that;
 *   - no stale-owner overwrite: a Complete, Release or Extend that the store
 *     accepts comes from the latest lease holder, with the latest fence;
 *   - a replay always returns the one stored result.
 *
 * spin -DBROKEN: the store no longer checks the owner on Complete (what a
 * store without owner tokens or fences would do); `make verify` requires
 * that this variant FAILS, so the check is known to be able to fail.
 */

#ifndef NCLIENTS
#define NCLIENTS 3
#endif
#ifndef NATTEMPTS
#define NATTEMPTS 2
#endif

mtype = { ABSENT, IN_FLIGHT, COMPLETED };

/* The store's record of the key; each step of the store is atomic, as
 * every backend makes it (a mutex, a Lua script, a transaction). */
mtype st = ABSENT;
byte owner = 0;        /* the lease holder's token; 0: none */
byte fence = 0;        /* 1 on creation, +1 per takeover, reset by Release */
bool lease = false;    /* false once the lease time has run out */
byte result = 0;       /* token of the execution whose result is stored */

/* Ghost state for the properties; never read by the protocol. */
byte next_token = 0;      /* tokens are unique per lease, like the 128-bit ones */
byte completions = 0;     /* successful Complete calls */
bool stale_write = false; /* a stale owner's Complete/Release/Extend accepted */
byte effects = 0;         /* upstream executions (side effects) */

/* The clock: any in-flight lease may run out at any moment. */
active proctype Clock() {
  do
  :: atomic { st == IN_FLIGHT && lease -> lease = false }
  od
}

/* An owner-checked call is accepted: it must come from the latest holder. */
inline accepted(tok, myfence) {
  stale_write = stale_write || tok != owner || myfence != fence
}

proctype Gateway(byte id) {
  byte attempts = 0;
  byte tok = 0;
  byte myfence = 0;
  bool execute = false;

attempt:
  attempts++;
  execute = false;
  /* Begin: absent -> in flight; lapsed lease -> takeover with fence + 1. */
  atomic {
    if
    :: st == ABSENT ->
         next_token++; tok = next_token;
         st = IN_FLIGHT; owner = tok; fence = 1; lease = true;
         myfence = fence; execute = true
    :: st == IN_FLIGHT && !lease ->
         next_token++; tok = next_token;
         owner = tok; fence++; lease = true;
         myfence = fence; execute = true
    :: st == IN_FLIGHT && lease -> skip          /* 409: retry later */
    :: st == COMPLETED -> assert(result != 0)    /* replay */
    fi;
    assert(!execute || completions == 0)
  }
  if
  :: !execute && st == COMPLETED -> goto done
  :: !execute && attempts < NATTEMPTS -> goto attempt
  :: !execute -> goto done
  :: execute -> skip
  fi;

  /* The owner works; it may extend its lease (also a lapsed one that nobody
   * took over, as the contract allows). */
  do
  :: true -> atomic {
       if
       :: st == IN_FLIGHT && owner == tok -> accepted(tok, myfence); lease = true
       :: else -> skip                          /* kLeaseLost */
       fi
     }
  :: break
  od;

  /* The upstream runs the request. A stale owner (lease lapsed and taken
   * over) may get here too: the store cannot stop that, which is why the
   * fence goes to the upstream. */
  effects++;

  if
  :: true -> atomic {   /* Complete: store the result */
#ifdef BROKEN
       if
       :: st == IN_FLIGHT ->
#else
       if
       :: st == IN_FLIGHT && owner == tok ->
#endif
            accepted(tok, myfence);
            st = COMPLETED; result = tok; owner = 0; lease = false;
            completions++
       :: else -> skip                          /* kLeaseLost / precondition */
       fi
     }
  :: true -> atomic {   /* Release: the upstream failed, a retry runs it again */
       if
       :: st == IN_FLIGHT && owner == tok ->
            accepted(tok, myfence);
            st = ABSENT; owner = 0; fence = 0; lease = false
       :: else -> skip
       fi
     }
  :: skip       /* the gateway crashed: the lease runs out */
  fi;
  if
  :: attempts < NATTEMPTS -> goto attempt       /* the client retries */
  :: else -> skip
  fi;
done:
  skip
}

init {
  byte i = 1;
  atomic {
    do
    :: i <= NCLIENTS -> run Gateway(i); i++
    :: else -> break
    od
  }
}

ltl safe { [] (completions <= 1 && !stale_write && (st != COMPLETED || result != 0)) }
