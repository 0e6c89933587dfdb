/** The small part of jstat 1.9.6 (CommonJS, untyped) that the decision core uses (M5). */
declare module 'jstat' {
  interface JStatBeta {
    /** Beta(a, b) density at x. */
    pdf(x: number, a: number, b: number): number;
    /** Beta(a, b) CDF at x. */
    cdf(x: number, a: number, b: number): number;
    /** Beta(a, b) quantile: the x with CDF(x) = p. */
    inv(p: number, a: number, b: number): number;
  }
  interface JStat {
    beta: JStatBeta;
    /** ln Γ(x). */
    gammaln(x: number): number;
    /** ln B(a, b). */
    betaln(a: number, b: number): number;
  }
  const jStat: JStat;
  export default jStat;
}
