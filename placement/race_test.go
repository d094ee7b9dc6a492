//go:build race

package placement

// raceEnabled scales the statistical tests down under the race detector,
// which slows placement some fifteenfold and checks nothing in them but the
// concurrent use of a Ring, which smaller runs exercise as well.
const raceEnabled = true
