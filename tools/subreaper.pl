#!/usr/bin/perl
# usage: perl tools/subreaper.pl COMMAND [ARG...]
#
# Runs COMMAND as a child of a Linux "child subreaper" (prctl
# PR_SET_CHILD_SUBREAPER) that reaps every process orphaned below it as soon as
# it exits, then exits with COMMAND's status.
#
# Why: a server started with `daemon on` (nginx or redis2d) is an orphan once
# its foreground process returns, so its parent becomes init. Test::Nginx stops
# a server by sending QUIT and then waiting while `kill 0, PID` succeeds, and a
# process that exited but was not yet reaped still answers `kill 0`. Some
# hosts' init reaps orphans only every few seconds (a firecracker VM's init
# here reaps every ~2 s), which made each stop take up to 2 s for both servers
# and decided whether time-window blocks (set-misc's formatted-time.t) fit
# their window. Under this subreaper the stop takes what the server takes,
# as on a host whose init reaps at once.
#
# Where prctl or the subreaper cannot be set (not Linux, no syscall.ph), the
# command runs as it would without this wrapper.
use strict;
use warnings;
use POSIX ();

@ARGV or die "usage: $0 COMMAND [ARG...]\n";

my $PR_SET_CHILD_SUBREAPER = 36;
my $ok = eval {
    require 'syscall.ph';
    syscall(&SYS_prctl, $PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
};
exec { $ARGV[0] } @ARGV or die "cannot run $ARGV[0]: $!\n" unless $ok;

my $child = fork();
defined $child or die "fork: $!\n";
if ($child == 0) {
    exec { $ARGV[0] } @ARGV or do { print STDERR "cannot run $ARGV[0]: $!\n"; POSIX::_exit(127) };
}

# forward the signals a caller stops us with; the child decides what to do
for my $sig (qw(INT TERM HUP QUIT)) {
    $SIG{$sig} = sub { kill $sig, $child };
}

# reap everything until the command itself ends; orphans still running
# then are reparented to init as they would have been without us
my $status = 0;
while (1) {
    my $pid = waitpid(-1, 0);
    if ($pid == -1) {
        next if $!{EINTR};
        last;
    }
    if ($pid == $child) {
        $status = $?;
        last;
    }
}
exit(($status & 127) ? 128 + ($status & 127) : $status >> 8);
