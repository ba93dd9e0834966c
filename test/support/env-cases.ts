/**
 * Every bad form of TCP_KEEPALIVE, with what its one-line message must mention: the part named, and what is
 * expected. The parser is checked against it in the fast tier (test/fast/env.test.ts); every form also stops a
 * real process with exit code 9 in test/register.test.ts.
 */
export const BAD_TCP_KEEPALIVE: Array<[value: string, mentions: RegExp]> = [
  ['10x', /"10x" is not a duration: expected a duration/],
  ['ten seconds', /"ten seconds" is not a duration/],
  ['-5s', /"-5s" is not a duration/],
  ['1.5ms', /"1.5ms" is not a duration/],
  ['1s', /"options.deadAfter" is out of range\. It must be an integer >= 2000/],
  ['1999ms', /"options.deadAfter" is out of range/],
  ['deadAfter=abc', /deadAfter=abc: expected a duration/],
  ['keepalivetime=3s', /keepaliveinterval= is missing/],
  ['keepaliveinterval=1s', /keepalivetime= is missing/],
  ['keepalivetime=3s,keepaliveinterval=1s,keepalivecount=many', /keepalivecount=many: expected a whole number of probes/],
  ['keepalivetime=3s,keepaliveinterval=1s,keepalivecount=1000', /"options.keepalivecount" is out of range/],
  ['keepalivetime=0,keepaliveinterval=1s', /"options.keepalivetime" is out of range/],
  ['keepalivetime=3s,keepaliveinterval=1s,usertimeout=soon', /usertimeout=soon: expected a duration/],
  ['10s,keepalivetime=2s', /deadAfter and keepalivetime given together/],
  ['keepalivecount=3,10s', /"10s" has no name: only the first part may be a bare duration/],
  ['10s,10s', /"10s" has no name/],
  ['10s,,side=client', /empty part/],
  ['10s,keepalivetime=2s,keepalivetime=3s', /keepalivetime is given twice/],
  ['10s,foo=1', /"foo" is not a setting: expected one of deadAfter, keepalivetime/],
  ['10s,ports=', /"" in ports: expected a port from 1 to 65535/],
  ['10s,ports=0', /"0" in ports: expected a port/],
  ['10s,ports=5432,70000', /"70000" in ports: expected a port/],
  ['10s,ports=5432,5s', /"5s" in ports: expected a port/],
  ['10s,side=both', /side=both: expected side=client or side=server/],
  ['side=client', /"side=client" sets no keepalive: expected a deadAfter first/],
  ['off,side=client', /"off" cannot be combined/],
  ['10s,off', /"off" cannot be combined|"off" has no name/],
];

