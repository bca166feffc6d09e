"""What the studio learns from: reward-model training and scoring (``scoring``), the
resumable batch render of a catalog (``batch``) and its arms (``arms``), the evolving arm
pools (``evolve``), off-policy evaluation of the event log (``offline``)."""
